"""Every picture in README.md and docs/, made again from real runs: an AE and a VAE trained with keras-vae's
defaults on the MNIST sample bundled with it, then compare, explore, animate and a screenshot of serve's page.

    KERAS_BACKEND=tensorflow python tools/figures.py            # about 5 minutes on a 2-core CPU

The runs go to saved_models/figures-ae and saved_models/figures-vae; the pictures to docs/images/ (the models/
pictures of docs/models.md come from benchmarks/models.py). The screenshot needs Debian's chromium and
chromium-driver.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
RUNS = ROOT / "saved_models"


def keras_vae(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *args], check=True, cwd=ROOT)


def train_both() -> dict[str, Path]:
    from keras_vae.data import SAMPLE

    runs = {}
    for model in ("ae", "vae"):
        keras_vae(
            "train", "--model", model, "--data-dir", str(SAMPLE), "--name", f"figures-{model}", "--overwrite"
        )
        runs[model] = RUNS / f"figures-{model}"
    return runs


def draw(runs: dict[str, Path]) -> None:
    compare = ROOT / "build" / "figures-compare"
    keras_vae("compare", str(runs["ae"]), str(runs["vae"]), "--out", str(compare), "--overwrite")
    for view in ("latent", "latent_grid", "reconstructions"):
        shutil.copy(compare / f"{view}.png", IMAGES / f"compare-{view.replace('_', '-')}.png")
    for model, run in runs.items():
        keras_vae("explore", str(run), "--overwrite")
        shutil.copy(run / "figures" / "samples.png", IMAGES / f"{model}-samples.png")
    keras_vae("animate", str(runs["vae"]), "--out", str(IMAGES / "vae-latent.gif"), "--overwrite")


def screenshot(runs: dict[str, Path]) -> None:
    """serve's page for the AE and the VAE, after a drag across the VAE's plane."""
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from keras_vae.serve import ServedRun, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app([ServedRun.load(runs["ae"]), ServedRun.load(runs["vae"])]),
            port=port,
            log_level="warning",
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        panel = browser.find_elements(By.CSS_SELECTOR, "section.run")[1]
        canvas = panel.find_element(By.CSS_SELECTOR, "canvas.plane")
        ActionChains(browser).move_to_element_with_offset(canvas, -90, -60).click_and_hold().move_by_offset(
            170, 120
        ).release().perform()
        wait.until(lambda b: len(panel.find_elements(By.CSS_SELECTOR, ".strip img")) == 10)
        browser.save_screenshot(str(IMAGES / "serve.png"))
    finally:
        browser.quit()
        server.should_exit = True


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    trained = train_both()
    draw(trained)
    screenshot(trained)
