"""`keras-vae serve`: the JSON API through Starlette's test client (decoding against the model, every error, no
path from a request), and the page itself in headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium), skipped with a reason where they are not installed."""

import base64
import io
import os
import shutil
import socket
import threading
import time

import imageio.v2 as imageio
import numpy as np
import pytest
from conftest import make_images, to_numpy
from starlette.testclient import TestClient
from test_data import write_split
from typer.testing import CliRunner

from cli.main import app
from keras_vae.serve import ServedRun, create_app

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-D VAE and a 3-D CVAE, trained for two epochs on 32 labelled images."""
    root = tmp_path_factory.mktemp("serve")
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(root, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(root, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    common = ["--data-dir", str(root), "--epochs", "2", "--arch", "dense", "--batch-size", "8", "--output-dir", str(root / "runs")]
    for name, flags in (("vae", []), ("cvae", ["--model", "cvae", "--latent-dim", "3"])):
        assert CliRunner().invoke(app, ["train", *common, "--name", name, *flags]).exit_code == 0
    return [root / "runs" / "vae", root / "runs" / "cvae"]


@pytest.fixture(scope="module")
def client(runs):
    return TestClient(create_app([ServedRun.load(run) for run in runs]))


def from_png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return imageio.imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) / 255


def test_runs_lists_what_is_served(client):
    runs = client.get("/api/runs").json()["runs"]
    assert [(r["name"], r["model"], r["latent_dim"], r["plane"], r["conditional"]) for r in runs] == [
        ("vae", "vae", 2, "z", False),
        ("cvae", "cvae", 3, "PCA", True),
    ]
    assert runs[0]["epochs"] == [1, 2] and runs[1]["classes"] == ["0", "1", "2", "3"] and runs[0]["images"] == 8


def test_points_are_the_codes_and_replay_each_epoch(client, runs):
    served = ServedRun.load(runs[0])
    points = client.get("/api/runs/0/points").json()
    np.testing.assert_allclose(points["points"], served.data.z, atol=1e-4)
    assert points["labels"] == (np.arange(8) % 4).tolist()
    first = client.get("/api/runs/0/points?epoch=1").json()["points"]
    np.testing.assert_allclose(first, np.load(runs[0] / "snapshots" / "epoch_0001.npz")["latent"], atol=1e-4)


def test_decode_is_the_models_decoder(client, runs):
    model = ServedRun.load(runs[0]).data.model
    z = np.array([[0.0, 0.0], [1.0, -1.0]], "float32")
    images = client.post("/api/runs/0/decode", json={"points": z.tolist()}).json()["images"]
    expected = to_numpy(model.decoder(z))
    for url, want in zip(images, expected, strict=True):
        np.testing.assert_allclose(from_png(url), want[..., 0], atol=1 / 255 + 1e-6)
    by_z = client.post("/api/runs/0/decode", json={"z": z.tolist()}).json()["images"]
    assert by_z == images


def test_a_cvae_decodes_under_the_class_picked(client):
    point = {"points": [[0.0, 0.0]]}
    two, three = (from_png(client.post("/api/runs/1/decode", json={**point, "label": label}).json()["images"][0]) for label in (2, 3))
    assert np.abs(two - three).max() > 0


def test_samples_come_from_the_runs_sampler_and_say_which(client, runs):
    drawn = client.get("/api/runs/0/samples?n=5").json()
    assert drawn["sampler"] == "prior: N(0, I)" and len(drawn["images"]) == 5
    assert all(from_png(url).shape == (8, 8) for url in drawn["images"])
    mixture = client.get("/api/runs/0/samples?n=3&sampler=gmm").json()
    assert mixture["sampler"].startswith("gmm: a 10-Gaussian mixture") and len(mixture["images"]) == 3
    assert client.get("/api/runs").json()["runs"][0]["sampler"] == "prior: N(0, I)"


def test_the_plane_of_a_3d_latent_is_its_pca_and_maps_back_into_that_plane(runs):
    served = ServedRun.load(runs[1])
    z = served.data.z.astype("float64")
    mean = z.mean(0)
    components = np.linalg.svd(z - mean, full_matrices=False)[2][:2]  # the first two principal directions
    projected = (z - mean) @ components.T
    plane = served.plane(z)
    signs = np.sign(np.sum(plane * projected, axis=0))  # a principal direction's sign is arbitrary
    np.testing.assert_allclose(plane * signs, projected, atol=1e-4)
    points = np.random.default_rng(0).normal(size=(5, 2))
    back = served.latent(points)
    np.testing.assert_allclose(back, mean + (points * signs) @ components, atol=1e-4)
    np.testing.assert_allclose(served.plane(back), points, atol=1e-6)


def test_a_click_on_a_point_gives_its_input_and_reconstruction(client, runs):
    data = ServedRun.load(runs[0]).data
    shown = client.get("/api/runs/0/images/3").json()
    np.testing.assert_allclose(from_png(shown["input"]), data.images[3][..., 0], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(from_png(shown["reconstruction"]), data.reconstructions[3][..., 0], atol=1 / 255 + 1e-6)
    assert shown["label"] == 3


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("post", "/api/runs/0/decode", b"not json", 400, "must be JSON"),
        ("post", "/api/runs/0/decode", {"points": [[0, 0]], "z": [[0, 0]]}, 400, "either points or z"),
        ("post", "/api/runs/0/decode", {"points": [[0, 0, 0]]}, 400, "points must be a list of 1 to 256 lists of 2 finite numbers"),
        ("post", "/api/runs/0/decode", {"z": [[0, "x"]]}, 400, "z must be a list of lists of 2 numbers"),
        ("post", "/api/runs/0/decode", {"points": [[0, 0]] * 257}, 400, "1 to 256"),
        ("post", "/api/runs/1/decode", {"points": [[0, 0]], "label": 4}, 400, "label must lie between 0 and 3"),
        ("post", "/api/runs/1/decode", {"points": [[0, 0]], "label": "1"}, 400, "label must be a whole number"),
        ("get", "/api/runs/2/points", None, 404, "run 2 is not served"),
        ("get", "/api/runs/0/points?epoch=9", None, 400, "epoch 9 has no snapshot"),
        ("get", "/api/runs/0/points?epoch=x", None, 400, "epoch must be a whole number"),
        ("get", "/api/runs/0/images/8", None, 400, "index must lie between 0 and 7"),
        ("get", "/api/runs/0/samples?n=0", None, 400, "n must lie between 1 and 256"),
        ("get", "/api/runs/0/samples?n=-1", None, 400, "n must be a whole number"),
        ("get", "/api/runs/0/samples?sampler=uniform", None, 400, "sampler must be one of prior, gmm"),
        ("get", "/static/../runs.py", None, 404, ""),
        ("get", "/static/..%2Fruns.py", None, 404, ""),
        ("get", "/static/index.html", None, 404, "no static file"),
        ("get", "/api/runs/0/../../../../etc/passwd", None, 404, ""),
    ],
)
def test_bad_requests_are_clear_json_errors_and_no_path_comes_from_a_request(client, method, path, body, status, message):
    options = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    response = getattr(client, method)(path, **options)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_the_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text and "http" not in page.text.replace("http-equiv", "")
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "http://" not in response.text and "https://" not in response.text  # nothing from a CDN


def test_serve_refuses_what_it_cannot_show_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "is not a run folder" in result.stderr
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2 and "--port" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(runs):
    """The app under uvicorn on a free local port, in a thread."""
    import uvicorn

    config = uvicorn.Config(create_app([ServedRun.load(run) for run in runs]), host="127.0.0.1", port=free_port(), log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}/"
    running.should_exit = True
    thread.join(10)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium and chromedriver (apt-get install chromium chromium-driver)")
def test_the_page_in_headless_chromium(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,760"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # Debian's driver: nothing downloaded
    try:
        browser.get(server)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        panels = browser.find_elements(By.CSS_SELECTOR, "section.run")
        assert len(panels) == 2 and len(panels[1].find_elements(By.CSS_SELECTOR, "select.classes option")) == 4
        canvas = panels[0].find_element(By.CSS_SELECTOR, "canvas.plane")
        ActionChains(browser).move_to_element(canvas).click().perform()
        decoded = [panel.find_element(By.CSS_SELECTOR, "img.decoded") for panel in panels]
        wait.until(lambda b: all((image.get_attribute("src") or "").startswith("data:image/png") for image in decoded))
        before = decoded[0].get_attribute("src")
        slider = panels[0].find_element(By.CSS_SELECTOR, "input.dimension")
        ActionChains(browser).click_and_hold(slider).move_by_offset(60, 0).release().perform()
        wait.until(lambda b: decoded[0].get_attribute("src") != before)
        ActionChains(browser).move_to_element_with_offset(canvas, -80, -80).click_and_hold().move_by_offset(160, 160).release().perform()
        wait.until(lambda b: len(panels[0].find_elements(By.CSS_SELECTOR, ".strip img")) == 10)
        panels[1].find_element(By.CSS_SELECTOR, "button.sample").click()
        wait.until(lambda b: panels[1].find_elements(By.CSS_SELECTOR, ".strip .sampler"))
        assert panels[1].find_element(By.CSS_SELECTOR, ".strip .sampler").text == "prior: N(0, I)"
        assert len(panels[1].find_elements(By.CSS_SELECTOR, ".strip img")) == 10
        assert browser.find_element(By.ID, "error").text == ""
        browser.save_screenshot(str(os.environ.get("KERAS_VAE_SCREENSHOT", tmp_path / "serve.png")))
    finally:
        browser.quit()


def test_serve_prints_its_url_and_stops_cleanly_on_ctrl_c(runs):
    import signal
    import subprocess
    import sys

    port = free_port()
    command = [sys.executable, "-m", "cli.main", "serve", str(runs[0]), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith(f"keras-vae serve: http://127.0.0.1:{port}/ (1 run; Ctrl-C stops it)"), line + process.stderr.read()
    for _ in range(100):  # the URL is printed just before the server binds
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
