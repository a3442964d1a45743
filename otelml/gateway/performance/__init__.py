"""Model performance: predictions joined with ground truth that arrives later."""
