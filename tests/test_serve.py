"""`keras-vae serve`: the JSON API through Starlette's test client (decoding against the model, every error,
no path from a request), and the page itself in headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium), skipped with a reason where they are not installed."""

import base64
import contextlib
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
from keras_vae.errors import ConfigError
from keras_vae.serve import ServedRun, create_app
from keras_vae.serve.guard import LOOPBACK, Guard
from keras_vae.serve.server import server_config

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-D VAE and a 3-D CVAE, trained for two epochs on 32 labelled images."""
    root = tmp_path_factory.mktemp("serve")
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(root, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(root, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    common = [
        "--data-dir",
        str(root),
        "--epochs",
        "2",
        "--arch",
        "dense",
        "--batch-size",
        "8",
        "--output-dir",
        str(root / "runs"),
    ]
    for name, flags in (("vae", []), ("cvae", ["--model", "cvae", "--latent-dim", "3"])):
        assert CliRunner().invoke(app, ["train", *common, "--name", name, *flags]).exit_code == 0
    return [root / "runs" / "vae", root / "runs" / "cvae"]


@pytest.fixture(scope="module")
def client(runs):
    return TestClient(create_app([ServedRun.load(run) for run in runs]), base_url="http://127.0.0.1:8000")


def from_png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return imageio.imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) / 255


def test_runs_lists_what_is_served(client):
    runs = client.get("/api/runs").json()["runs"]
    assert [(r["name"], r["model"], r["latent_dim"], r["plane"], r["conditional"]) for r in runs] == [
        ("vae", "vae", 2, "z", False),
        ("cvae", "cvae", 3, "PCA", True),
    ]
    assert (
        runs[0]["epochs"] == [1, 2] and runs[1]["classes"] == ["0", "1", "2", "3"] and runs[0]["images"] == 8
    )


def test_points_are_the_codes_and_replay_each_epoch(client, runs):
    served = ServedRun.load(runs[0])
    points = client.get("/api/runs/0/points").json()
    np.testing.assert_allclose(points["points"], served.run.z, atol=1e-4)
    assert points["labels"] == served.run.labels.tolist() and sorted(points["labels"]) == sorted(
        (np.arange(8) % 4).tolist()
    )
    first = client.get("/api/runs/0/points?epoch=1").json()["points"]
    np.testing.assert_allclose(first, np.load(runs[0] / "snapshots" / "epoch_0001.npz")["latent"], atol=1e-4)


def test_decode_is_the_models_decoder(client, runs):
    model = ServedRun.load(runs[0]).run.model
    z = np.array([[0.0, 0.0], [1.0, -1.0]], "float32")
    images = client.post("/api/runs/0/decode", json={"points": z.tolist()}).json()["images"]
    expected = to_numpy(model.decoder(z))
    for url, want in zip(images, expected, strict=True):
        np.testing.assert_allclose(from_png(url), want[..., 0], atol=1 / 255 + 1e-6)
    by_z = client.post("/api/runs/0/decode", json={"z": z.tolist()}).json()["images"]
    assert by_z == images


def test_a_cvae_decodes_under_the_class_picked(client):
    point = {"points": [[0.0, 0.0]]}
    two, three = (
        from_png(client.post("/api/runs/1/decode", json={**point, "label": label}).json()["images"][0])
        for label in (2, 3)
    )
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
    z = served.run.z.astype("float64")
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
    data = ServedRun.load(runs[0]).run
    shown = client.get("/api/runs/0/images/3").json()
    np.testing.assert_allclose(from_png(shown["input"]), data.images[3][..., 0], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(
        from_png(shown["reconstruction"]), data.reconstructions[3][..., 0], atol=1 / 255 + 1e-6
    )
    assert shown["label"] == data.labels[3]
    np.testing.assert_allclose(shown["z"], to_numpy(data.model.means_encoder(data.images[3:4]))[0], atol=1e-4)


def test_served_runs_name_the_parameter_they_refuse(runs):
    """The library's errors name their parameter, which the CLI maps to a flag, in serve as elsewhere."""
    vae, cvae = ServedRun.load(runs[0]), ServedRun.load(runs[1])
    refusals = {
        "index": lambda: vae.image(8),
        "points": lambda: vae.decode(points=[[1.0]]),
        "z": lambda: vae.decode(z=[[1.0, "x"]]),
        "label": lambda: cvae.decode(z=[[0.0, 0.0, 0.0]], label=4),
        "n": lambda: vae.samples(0),
        "epoch": lambda: vae.points(epoch=9),
        "label '": lambda: cvae.run.label_of("seven"),
    }
    for parameter, call in refusals.items():
        with pytest.raises(ConfigError) as refused:
            call()
        assert refused.value.parameter == parameter.split()[0] and str(refused.value).startswith(parameter)
    cvae.run.config["data"]["class_names"] = [
        "zero",
        "one",
        "two",
        "three",
    ]  # as a data set with named classes records them
    assert cvae.run.label_of("two") == 2 and cvae.run.label_of("3") == 3
    with pytest.raises(
        ConfigError,
        match="^label 'seven' is not a class of cvae: give the class names zero, one, two, three or a "
        "number from 0 to 3$",
    ):
        cvae.run.label_of("seven")


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("post", "/api/runs/0/decode", b"not json", 400, "must be JSON"),
        ("post", "/api/runs/0/decode", {"points": [[0, 0]], "z": [[0, 0]]}, 400, "either points or z"),
        (
            "post",
            "/api/runs/0/decode",
            {"points": [[0, 0, 0]]},
            400,
            "points must be a list of 1 to 256 lists of 2 finite numbers",
        ),
        ("post", "/api/runs/0/decode", {"z": [[0, "x"]]}, 400, "z must be a list of lists of 2 numbers"),
        ("post", "/api/runs/0/decode", {"points": [[0, 0]] * 257}, 400, "1 to 256"),
        (
            "post",
            "/api/runs/1/decode",
            {"points": [[0, 0]], "label": 4},
            400,
            "label must lie between 0 and 3",
        ),
        (
            "post",
            "/api/runs/1/decode",
            {"points": [[0, 0]], "label": "1"},
            400,
            "label must be a whole number",
        ),
        ("get", "/api/runs/2/points", None, 404, "run 2 is not served"),
        ("get", "/api/runs/0/points?epoch=9", None, 400, "epoch 9 has no snapshot"),
        ("get", "/api/runs/0/points?epoch=x", None, 400, "epoch must be a whole number"),
        ("get", "/api/runs/0/points?epoch=²", None, 400, "epoch must be a whole number"),
        ("get", "/api/runs/0/points?epoch=99999999999999999999", None, 400, "epoch must be a whole number"),
        ("get", "/api/runs/0/samples?n=³", None, 400, "n must be a whole number"),
        ("post", "/api/runs/0/decode", b"[" * 100_000 + b"]" * 100_000, 400, "must be JSON"),
        ("post", "/api/runs/0/decode", b'{"points": [[1e999, 0]]}', 400, "finite numbers"),
        ("post", "/api/runs/0/decode", b'{"points": [[1' + b"0" * 400 + b", 0]]}", 400, "lists of 2 numbers"),
        ("post", "/api/runs/0/decode", b"\xff\xfe", 400, "must be JSON"),
        ("get", "/api/runs/0/images/8", None, 400, "index must lie between 0 and 7"),
        ("get", "/api/runs/0/samples?n=0", None, 400, "n must lie between 1 and 256"),
        ("get", "/api/runs/0/samples?n=-1", None, 400, "n must be a whole number"),
        ("get", "/api/runs/0/samples?sampler=uniform", None, 400, "sampler must be one of prior, gmm"),
        ("get", "/static/../runs.py", None, 404, ""),
        ("get", "/static/..%2Fruns.py", None, 404, ""),
        ("get", "/static/index.html", None, 404, "no static file"),
        ("get", "/api/runs/0/../../../../etc/passwd", None, 404, ""),
        ("post", "/api/runs/0/decode", {"z": None}, 400, "give either points or z"),
        ("get", "/api/runs/" + "9" * 5000 + "/points", None, 414, "at most 2,048 characters"),
    ],
)
def test_bad_requests_are_clear_json_errors_and_no_path_comes_from_a_request(
    client, method, path, body, status, message
):
    as_json = {"content-type": "application/json"}
    options = (
        {"content": body, "headers": as_json}
        if isinstance(body, bytes)
        else {"json": body}
        if body is not None
        else {}
    )
    response = getattr(client, method)(path, **options)
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    "headers, body, status, message",
    [
        ({"host": "attacker.example"}, None, 403, "not attacker.example: add it with --allow-host"),
        (
            {"host": "attacker.example:8000"},
            None,
            403,
            "answers requests for 127.0.0.1, ::1, localhost, not attacker.example",
        ),
        ({"host": ""}, None, 403, "not no host"),
        ({"origin": "http://attacker.example"}, None, 403, "requests from pages of other sites are refused"),
        ({"origin": "null"}, None, 403, "other sites"),
        ({"host": "[::1"}, None, 403, "not no host"),
        ({"origin": "http://[::1"}, None, 403, "other sites"),
        ({"content-type": "text/plain"}, b'{"points": [[0, 0]]}', 415, "Content-Type: application/json"),
        (
            {"content-type": "application/json", "content-length": str((1 << 20) + 1)},
            b"{}",
            413,
            "at most 1,048,576 bytes",
        ),
    ],
)
def test_other_hosts_other_sites_and_large_or_plain_bodies_are_refused(
    client, headers, body, status, message
):
    """DNS rebinding names another host; a page of another site sends its Origin, or a text/plain POST that
    needs no preflight. Each is refused before the app decodes anything."""
    response = (
        client.post("/api/runs/0/decode", content=body, headers=headers)
        if body
        else client.get("/api/runs", headers=headers)
    )
    assert response.status_code == status and message in response.json()["error"]


def test_a_request_without_a_host_header_is_refused_as_naming_no_host():
    """An HTTP/1.0 client may send no Host at all (the test client always sends one)."""
    status, message = Guard(None, LOOPBACK).refusal({"type": "http", "method": "GET", "headers": []})
    assert status == 403 and message.endswith("not no host: add it with --allow-host")


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_this_machines_names_and_its_own_pages_are_answered(client, host):
    response = client.post(
        "/api/runs/0/decode", json={"points": [[0, 0]]}, headers={"host": host, "origin": f"http://{host}"}
    )
    assert response.status_code == 200 and len(response.json()["images"]) == 1


def test_a_body_of_unknown_length_is_read_only_up_to_the_limit(client):
    sent = []

    def chunks():
        for _ in range(64):
            sent.append(1)
            yield b" " * (64 << 10)

    response = client.post(
        "/api/runs/0/decode", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "at most 1,048,576 bytes" in response.json()["error"]


def test_an_unexpected_failure_is_a_json_500(client, monkeypatch):
    monkeypatch.setattr(ServedRun, "image", lambda self, index: 1 / 0)
    response = TestClient(client.app, raise_server_exceptions=False, base_url="http://127.0.0.1").get(
        "/api/runs/0/images/0"
    )
    assert response.status_code == 500 and response.json() == {
        "error": "the server failed: ZeroDivisionError: division by zero"
    }


def test_a_damaged_snapshot_turns_off_that_runs_replay_not_the_page(runs, tmp_path):
    damaged = shutil.copytree(runs[0], tmp_path / "vae")
    (damaged / "snapshots" / "epoch_0001.npz").write_bytes(b"not a snapshot")
    client = TestClient(
        create_app([ServedRun.load(damaged), ServedRun.load(runs[1])]), base_url="http://127.0.0.1"
    )
    listed = client.get("/api/runs").json()["runs"]
    assert listed[0]["epochs"] == [] and "epoch_0001.npz" in listed[0]["replay_error"]
    assert listed[1]["epochs"] == [1, 2] and listed[1]["replay_error"] is None
    assert client.get("/api/runs/0/points").status_code == 200
    replay = client.get("/api/runs/0/points?epoch=2")
    assert replay.status_code == 400 and "epoch replay is off" in replay.json()["error"]


def test_a_1d_latent_of_1x1_images_lies_along_the_planes_x_and_decodes(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "dots.npz", x_train=rng.integers(0, 256, (16, 1, 1), dtype="u1"), y_train=np.arange(16) % 2
    )
    flags = [
        "--latent-dim",
        "1",
        "--epochs",
        "1",
        "--arch",
        "dense",
        "--batch-size",
        "8",
        "--output-dir",
        tmp_path / "runs",
        "--name",
        "dot",
    ]
    assert (
        CliRunner()
        .invoke(app, ["train", "--data-dir", str(tmp_path / "dots.npz"), *map(str, flags)])
        .exit_code
        == 0
    )
    served = ServedRun.load(tmp_path / "runs" / "dot")
    client = TestClient(create_app([served]), base_url="http://127.0.0.1")
    points = np.array(client.get("/api/runs/0/points").json()["points"])
    np.testing.assert_allclose(points, np.hstack([served.run.z, np.zeros_like(served.run.z)]), atol=1e-4)
    images = client.post("/api/runs/0/decode", json={"points": [[0.5, 3.0]]}).json()["images"]
    expected = to_numpy(served.run.model.decoder(np.array([[0.5]], "float32")))
    np.testing.assert_allclose(from_png(images[0]), expected[0, ..., 0], atol=1 / 255 + 1e-6)
    assert from_png(client.get("/api/runs/0/images/0").json()["input"]).shape == (1, 1)


def test_the_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert (
        page.status_code == 200
        and '<script src="/static/app.js">' in page.text
        and "http" not in page.text.replace("http-equiv", "")
    )
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


def test_a_taken_port_is_one_line_before_any_url(runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(runs[0]), "--port", str(port)])
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith(f"keras-vae: error: cannot listen on 127.0.0.1 port {port}")
        and "--port" in result.stderr
    )


def test_listening_beyond_this_machine_warns_in_one_line_and_answers_the_names_allowed(runs, monkeypatch):
    import uvicorn

    served = {}

    class Server:  # uvicorn's own would set up logging on the test runner's captured stderr
        def __init__(self, config):
            served["app"] = config

        def run(self, sockets):
            served["sockets"] = sockets

    monkeypatch.setattr(uvicorn, "Config", lambda app, **options: app)
    monkeypatch.setattr(uvicorn, "Server", Server)
    result = CliRunner().invoke(
        app,
        [
            "serve",
            str(runs[0]),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--allow-host",
            "lab.example",
        ],
    )
    for listening in served["sockets"]:
        listening.close()
    assert result.exit_code == 0 and result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith("keras-vae: warning: listening on 0.0.0.0, beyond this machine")
        and "lab.example" in result.stderr
    )
    client = TestClient(served["app"], base_url="http://lab.example:8000")
    assert client.get("/api/runs").status_code == 200
    assert client.get("/api/runs", headers={"host": "elsewhere.example"}).status_code == 403


@contextlib.contextmanager
def serving(config):
    """uvicorn serving a config on a free local port, in a thread; its port."""
    import uvicorn

    config.host, config.port = "127.0.0.1", free_port()
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.05)
    yield config.port
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def server(runs):
    """The app under uvicorn on a free local port, in a thread."""
    with serving(server_config(create_app([ServedRun.load(run) for run in runs]))) as port:
        yield f"http://127.0.0.1:{port}/"


def test_a_slow_decode_does_not_stall_the_other_requests(server, monkeypatch):
    import json
    import urllib.request

    release, entered = threading.Event(), threading.Event()
    decode = ServedRun.decode

    def slow_decode(self, *args):
        entered.set()
        release.wait(30)
        return decode(self, *args)

    monkeypatch.setattr(ServedRun, "decode", slow_decode)
    request = urllib.request.Request(
        f"{server}api/runs/0/decode",
        json.dumps({"points": [[0, 0]]}).encode(),
        {"content-type": "application/json"},
    )
    slow = threading.Thread(target=lambda: urllib.request.urlopen(request, timeout=60).read())
    slow.start()
    try:
        assert entered.wait(30)
        with urllib.request.urlopen(f"{server}api/runs", timeout=5) as listed:
            assert len(json.load(listed)["runs"]) == 2
        with urllib.request.urlopen(f"{server}api/runs/1/samples?n=2", timeout=5) as drawn:
            assert len(json.load(drawn)["images"]) == 2
    finally:
        release.set()
        slow.join(60)


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium and chromedriver (apt-get install chromium chromium-driver)",
)
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
    browser = webdriver.Chrome(
        service=Service(CHROMEDRIVER), options=options
    )  # Debian's driver: nothing downloaded
    try:
        browser.get(server)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        panels = browser.find_elements(By.CSS_SELECTOR, "section.run")
        assert (
            len(panels) == 2 and len(panels[1].find_elements(By.CSS_SELECTOR, "select.classes option")) == 4
        )
        centres = [
            panel.find_element(By.CSS_SELECTOR, "img.decoded").get_attribute("src") or "" for panel in panels
        ]
        assert all(src.startswith("data:image/png") for src in centres), (
            "each plane's centre is decoded on load"
        )
        canvas = panels[0].find_element(By.CSS_SELECTOR, "canvas.plane")
        ActionChains(browser).move_to_element(canvas).click().perform()
        decoded = [panel.find_element(By.CSS_SELECTOR, "img.decoded") for panel in panels]
        wait.until(
            lambda b: all(
                (image.get_attribute("src") or "").startswith("data:image/png") for image in decoded
            )
        )
        before = decoded[0].get_attribute("src")
        slider = panels[0].find_element(By.CSS_SELECTOR, "input.dimension")
        ActionChains(browser).click_and_hold(slider).move_by_offset(60, 0).release().perform()
        wait.until(lambda b: decoded[0].get_attribute("src") != before)
        ActionChains(browser).move_to_element_with_offset(canvas, -80, -80).click_and_hold().move_by_offset(
            160, 160
        ).release().perform()
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
    assert line.startswith(f"keras-vae serve: http://127.0.0.1:{port}/ (1 run; Ctrl-C stops it)"), (
        line + process.stderr.read()
    )
    for _ in range(100):  # the URL is printed once the socket listens, before uvicorn serves on it
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr


@pytest.fixture
def strict_server(runs, caplog):
    """The app under uvicorn with the bounds of server.py made short: headers within 1 s, bodies within 1 s,
    at most 3 connections; and the server's log records."""
    config = server_config(
        create_app([ServedRun.load(runs[0])], body_seconds=1.0), header_seconds=1.0, max_connections=3
    )
    with serving(config) as port:
        yield port, caplog


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (an empty read) within seconds."""
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass
    except (TimeoutError, ConnectionResetError) as error:
        return isinstance(error, ConnectionResetError)
    return True


def test_slow_headers_are_cut_off_and_open_connections_are_bounded(strict_server):
    port, _ = strict_server
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /api/runs HTTP/1.1\r\nHo")  # a header at a byte a second
    started = time.monotonic()
    assert closed_within(slow, 10) and time.monotonic() - started < 6
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    beyond = socket.create_connection(("127.0.0.1", port))
    assert closed_within(beyond, 0.5), "a fourth connection is closed at once"
    for connection in idle:
        assert closed_within(connection, 3), "idle connections go once the header deadline passes"
    with socket.create_connection(("127.0.0.1", port)) as fresh:
        fresh.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert whole_response(fresh, 30).startswith(b"HTTP/1.1 200")


def whole_response(connection: socket.socket, seconds: float = 10) -> bytes:
    """One HTTP response read whole: its head, then as many bytes as its Content-Length says, however they
    come."""
    connection.settimeout(seconds)
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body


def test_a_slow_body_is_a_408_and_a_client_gone_mid_body_leaves_no_traceback(strict_server):
    port, caplog = strict_server
    head = (
        b"POST /api/runs/0/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"points"'
    )
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(head)
        answer = whole_response(slow)
    assert answer.startswith(b"HTTP/1.1 408") and b"the request body must arrive within 1 s" in answer
    with socket.create_connection(("127.0.0.1", port)) as gone:
        gone.sendall(head)
    time.sleep(0.5)
    with socket.create_connection(("127.0.0.1", port)) as after:
        after.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert whole_response(after, 30).startswith(b"HTTP/1.1 200")
    assert not [record for record in caplog.records if record.exc_info], [
        record.getMessage() for record in caplog.records
    ]
