"""Locust load tests of the example model services, with a verdict on whether monitoring kept up.

`plugin` is what a locustfile imports: the command-line options, the phased load shape
(warm-up, normal, drift), the base user that sends rows drawn from the training data and posts
their ground truth later, and the listeners that read the gateway during the run and judge it
at the end. `traffic` draws the rows, `gateway_metrics` reads the gateway's /metrics, `verdict`
judges (pure functions, no locust).
"""
