"""Load test of the FastAPI example (`uvicorn examples.fastapi_service.service:app`).

    locust -f locustfile.py --host http://127.0.0.1:8000 --headless -u 8 -r 4 -t 3m

Single calls go to `/predict` (the patient's fields as the body), batch calls to
`/predict_batch` (`{"patients": [...]}`); what the run does and what the verdict checks is in
examples/loadtest. The README lists every option.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the shared module

from loadtest.plugin import ModelUser, PhasedShape, register

__all__ = ["FastApiUser", "PhasedShape"]

register(__file__)


class FastApiUser(ModelUser):
    single_path = "/predict"
    batch_path = "/predict_batch"
