"""The page in a real headless Chromium, against a gateway fed a drifting stream over OTLP/HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import browser_page, screenshot
from tests.conftest import running_gateway
from tests.gateway.otlp_builders import traces
from tests.gateway.ui import drifting


@pytest.mark.slow
def test_the_page_shows_drift_and_the_requests_behind_a_bucket(tmp_path: Path) -> None:
    drifting.sample_every_request()
    with running_gateway(drifting.config(tmp_path)) as gateway:
        stream = drifting.stream_until_drift(gateway.http_url, gateway.admin_url)
        api = f"{gateway.admin_url}/api/v1"
        with drifting.streaming(gateway.http_url, stream), browser_page() as (page, errors):
            page.goto(f"{gateway.admin_url}/ui/")
            page.wait_for_selector("tr[data-series]")
            model = httpx.get(f"{api}/model", params={"name": "churn", "version": "3"}).json()
            shown = page.eval_on_selector_all(
                "tr[data-series]", "rows => rows.map(r => r.dataset.series)"
            )
            # The moved features first, in the API's order; the one that did not move last.
            assert shown[-1] == "feature:tenure"
            assert set(shown[:3]) == {"feature:age", "feature:contract", "prediction:prediction"}
            assert sorted(shown) == sorted(f"{s['role']}:{s['name']}" for s in model["series"])
            screenshot(page, "ui-model")

            page.click("tr[data-series='feature:age']")
            page.wait_for_selector("svg.histogram g.bucket")
            page.wait_for_selector("tr.sample")
            detail = httpx.get(
                f"{api}/series",
                params={"name": "churn", "version": "3", "role": "feature", "series": "age"},
            ).json()
            bars = page.eval_on_selector_all(
                "svg.histogram g.bucket",
                "gs => gs.map(g => [Number(g.dataset.bucket), Number(g.dataset.referenceShare)])",
            )
            assert [b[0] for b in bars] == [b["index"] for b in detail["buckets"]]
            assert [b[1] for b in bars] == pytest.approx(
                [b["reference_share"] for b in detail["buckets"]]
            )
            labels = page.eval_on_selector_all(
                "svg.histogram .bucket-label", "ts => ts.map(t => t.textContent)"
            )
            assert labels == [b["label"] for b in detail["buckets"]]
            # The score chart draws the API's history (which may have grown a step since).
            points = page.eval_on_selector_all(
                "svg.timeline circle.point", "cs => cs.map(c => Number(c.dataset.value))"
            )
            history = [p["score"] for p in detail["history"] if p["score"] is not None]
            assert len(points) >= 5
            assert points == pytest.approx(history[: len(points)], rel=1e-6)

            # The drifted bucket is preselected: its requests were sent, values in the bucket.
            moved = detail["summary"]["moved_most"]["index"]
            page.click(f"svg.histogram g.bucket[data-bucket='{moved}'] rect.hit")
            bucket = next(b for b in detail["buckets"] if b["index"] == moved)
            row = page.wait_for_selector("tr.sample")
            assert row is not None
            trace = row.get_attribute("data-trace")
            sent = dict(stream.spans)
            value = float(row.get_attribute("data-value") or "nan")
            assert trace in sent and sent[trace]["ml.feature.age"] == value
            assert bucket["lower"] < value and (bucket["upper"] is None or value <= bucket["upper"])
            row.click()
            page.wait_for_selector("#request-trace")
            assert page.text_content("#request-trace") == trace
            cells = page.eval_on_selector_all(
                "#request table.kv tr[data-name]",
                "rs => Object.fromEntries(rs.map(r => [r.dataset.name, r.dataset.value]))",
            )
            assert cells["contract"] == sent[trace]["ml.feature.contract"]
            assert float(cells["tenure"]) == sent[trace]["ml.feature.tenure"]
            assert float(cells["prediction"]) == sent[trace]["ml.prediction"]
            screenshot(page, "ui-series")
            assert errors == []


HOSTILE_MODEL = "<img src=x onerror=alert(1)>"
HOSTILE_FEATURE = "<script>alert(2)</script>"


@pytest.mark.slow
def test_with_auth_the_page_asks_for_the_token_and_keeps_it_for_the_tab(tmp_path: Path) -> None:
    config = drifting.config(tmp_path, auth={"bearer_token": "s3cret"})
    token = {"Authorization": "Bearer s3cret"}
    with running_gateway(config) as gateway:
        drifting.send(gateway.http_url, 50, False, 1, 0, token)
        # Names come from telemetry: hostile ones must show as text, never run.
        hostile = traces(
            [{"ml.model.name": HOSTILE_MODEL, f"ml.feature.{HOSTILE_FEATURE}": 1.0}],
            first_trace=900,
        )
        headers = {"Content-Type": "application/x-protobuf", **token}
        httpx.post(f"{gateway.http_url}/v1/traces", content=hostile, headers=headers)
        with browser_page() as (page, errors):
            dialogs: list[str] = []

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(f"{gateway.admin_url}/ui/")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("#token", "s3cret")
            page.click("#login button")
            page.wait_for_selector("a.model[data-model='churn/3']")
            assert page.evaluate("sessionStorage.getItem('otelml.token')") == "s3cret"
            # ?token= once: taken into the tab's storage and out of the address bar.
            page.goto(f"{gateway.admin_url}/ui/?token=s3cret")
            page.wait_for_selector("a.model[data-model='churn/3']")
            assert "token" not in page.url
            page.click(f"a.model[data-model='{HOSTILE_MODEL}/']")
            page.wait_for_selector(f"tr[data-series='feature:{HOSTILE_FEATURE}']")
            assert page.text_content("main h1") == HOSTILE_MODEL + " v–"
            assert (
                page.get_attribute("tr[data-series]", "data-series") == f"feature:{HOSTILE_FEATURE}"
            )
            assert dialogs == [] and page.query_selector("main img") is None
            # The 401s of the first load are the browser's own log lines, not page errors.
            assert all("401" in e for e in errors)


@pytest.mark.slow
def test_the_page_stays_usable_with_100_models_of_20_features(tmp_path: Path) -> None:
    """The scale case in the browser: every view renders, the drifting models first (how long
    each view takes is printed; the API's own figures are `python -m bench ui`)."""
    import asyncio
    import threading
    import time

    from tests.gateway.ui.scale import fed_at_scale

    gateway = fed_at_scale(tmp_path, models=100, features=20)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ports = asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=30)
    url = f"http://127.0.0.1:{ports.admin}/ui/"
    try:
        with browser_page() as (page, errors):
            timings = {}
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("tr[data-series]")
            timings["first model"] = time.perf_counter() - started
            assert len(page.query_selector_all("a.model")) == 100
            # The drifting models (the even ones) are listed first.
            first = page.get_attribute("a.model", "data-model")
            assert first is not None and int(first.split("/")[0][1:]) % 2 == 0
            assert len(page.query_selector_all("tr[data-series]")) == 21
            page.fill("#filter", "m5")  # m5, m50 … m59
            page.wait_for_selector("a.model[data-model='m59/1']")
            page.wait_for_selector("a.model[data-model='m0/1']", state="detached")
            shown = page.eval_on_selector_all("a.model", "ms => ms.map(m => m.dataset.model)")
            assert sorted(shown) == sorted(f"m{n}/1" for n in [5, *range(50, 60)])
            started = time.perf_counter()
            page.click("a.model[data-model='m57/1']")
            page.wait_for_selector("h1:has-text('m57')")
            timings["another model"] = time.perf_counter() - started
            started = time.perf_counter()
            page.click("tr[data-series='feature:f3']")
            page.wait_for_selector("svg.histogram g.bucket")
            timings["a series"] = time.perf_counter() - started
            assert errors == []
            print(" ".join(f"{k}: {v * 1000:.0f} ms" for k, v in timings.items()))
            screenshot(page, "ui-scale")
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(grace=0.5), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
