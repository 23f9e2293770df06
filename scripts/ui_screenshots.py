"""Screenshots of the MLflow UI as a user opens it after a run: the runs table and one cell's charts.

    python scripts/ui_screenshots.py [--store sqlite:///mlflow.db] [--out reports/ui] [--experiment NAME]

Starts a real `mlflow server` on the store (a free port on 127.0.0.1; artifacts served from where the runs put
them), opens the experiment's runs table and the newest cell run's charts in headless Chromium (Debian's
`chromium` package, driven by Playwright), and writes runs_table.png, cell_charts.png and the rendered HTML of
each to --out. Prints the paths. tests/test_pipeline_e2e.py runs it on the end-to-end project.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.scratch_project import mlflow_server  # noqa: E402 (after the path it needs)

# Debian's chromium, launched by Playwright (no browser download): a closed network refuses Chromium's own
# background connections, so those are switched off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 90_000  # the UI fetches runs and draws charts in the page; generous for a loaded 2-core machine
# MLflow 3's UI opens a new browser in its GenAI view; the experimentKind tag the pipeline sets picks the runs
# table once inside, and this query parameter makes a fresh browser start in the model-training view.
MODEL_TRAINING = "workflowType=machine_learning"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def capture(base: str, experiment_id: str, cell_run_id: str | None, out: Path, browser_path: str) -> list[Path]:
    """Screenshot the runs table and one cell run's charts; also save each page's rendered HTML."""
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/#/experiments/{experiment_id}?{MODEL_TRAINING}")
        page.get_by_role("link", name="Runs").first.wait_for(timeout=WAIT_MS)
        page.locator("a[href*='/runs/']").first.wait_for(timeout=WAIT_MS)  # the table's run links
        assistant = page.get_by_role("button", name=re.compile("^close", re.I))
        if assistant.count():  # MLflow 3's assistant panel would cover a third of the table
            assistant.first.click()
        shots.append(_save(page, out / "runs_table"))
        if cell_run_id:
            page.goto(f"{base}/#/experiments/{experiment_id}/runs/{cell_run_id}/model-metrics?{MODEL_TRAINING}")
            search = page.get_by_placeholder("Search metric charts")
            search.wait_for(timeout=WAIT_MS)
            search.fill("validation_spearman")  # the validation curve (from step 0) and the kept checkpoint's score
            page.locator(".js-plotly-plot").first.wait_for(timeout=WAIT_MS)
            page.wait_for_timeout(2_000)  # let every chart in view finish drawing
            shots.append(_save(page, out / "cell_charts"))
        browser.close()
    return shots


def _save(page: object, stem: Path) -> Path:
    stem.with_suffix(".html").write_text(page.content(), encoding="utf-8")
    page.screenshot(path=str(stem.with_suffix(".png")))
    return stem.with_suffix(".png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="sqlite:///mlflow.db")
    parser.add_argument("--out", default="reports/ui")
    parser.add_argument("--experiment", default="sentence-embedding-finetune")
    args = parser.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2

    import mlflow

    client = mlflow.MlflowClient(args.store)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        print(f"no experiment {args.experiment!r} in {args.store}", file=sys.stderr)
        return 2
    cells = client.search_runs([experiment.experiment_id], "tags.cell != ''", max_results=1,
                               order_by=["attributes.start_time DESC"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with mlflow_server(args.store, cwd=Path.cwd()) as (base, _):
        for shot in capture(base, experiment.experiment_id, cells[0].info.run_id if cells else None, out, browser):
            print(shot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
