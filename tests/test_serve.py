"""`autoft serve`: a saved model behind HTTP, tested over real HTTP on loopback (a server in its own process)."""

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

MAX_TEXTS = 16  # the test server's --max-texts
TEXTS = ["superb wonderful seller", "awful broken item", "the box arrived on time", "great price, poor delivery"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_bert):
    """A saved model folder as a study leaves it (weights, tokenizer, study.toml, trial.json, metrics.json), made
    directly from the tiny model with an untrained head: serving needs no trained model, and this takes a second."""
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    best = tmp_path_factory.mktemp("served") / "best"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    model.save_pretrained(best, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(best)
    study = {"study": {"name": "tiny"}, "model": {"name": str(tiny_bert), "max_length": 32}}
    (best / "study.toml").write_text(tomli_w.dumps(study))
    scores = {"accuracy": 0.9, "f1_macro": 0.89}
    config = {"strategy": "full", "hyperparams": {"learning_rate": 0.01, "epochs": 1}}
    (best / "trial.json").write_text(json.dumps({"trial": 2, "params": {}, "config": config, "validation": scores}))
    metrics = {"study": "tiny", "trial": 2, "objective": "f1_macro", "validation": scores, "test": scores}
    metrics |= {"test_rows": 30, "majority_baseline": {"label": "neg", "accuracy": 0.5}, "label_names": ["neg", "pos"]}
    (best / "metrics.json").write_text(json.dumps(metrics))
    return best


@pytest.fixture(scope="module")
def expected(model_dir):
    """What autoft.predict.Predictor says of the same texts: (labels, probabilities)."""
    from autoft.predict import Predictor

    predictor = Predictor(model_dir, device="cpu")

    def predict(texts):
        proba = predictor.proba(list(texts))
        return [predictor.label_names[i] for i in proba.argmax(axis=1)], proba

    return predict


@contextlib.contextmanager
def running_server(model_dir, log_dir):
    """`python -m autoft serve` on a free loopback port; its base URL, process and log once /health answers."""
    port = free_port()
    log = log_dir / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autoft",
                "serve",
                str(model_dir),
                "--port",
                str(port),
                "--device",
                "cpu",
                "--batch-size",
                "8",
                "--max-wait-ms",
                "20",
                "--max-texts",
                str(MAX_TEXTS),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited ({process.returncode}): {log.read_text()}"
            assert time.monotonic() < deadline, f"the server did not answer in 60 s: {log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield SimpleNamespace(url=url, process=process, log=log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The single-text model served."""
    with running_server(model_dir, tmp_path_factory.mktemp("server-log")) as running:
        yield running


def post(url: str, body, **kwargs) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(f"{url}/predict", content=body, timeout=30, **kwargs)
    return httpx.post(f"{url}/predict", json=body, timeout=30, **kwargs)


def assert_one_line_error(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    assert body["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_root_gives_the_model_metadata_and_health_says_ok(server, model_dir, tiny_bert):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    root = httpx.get(server.url + "/", timeout=10).json()
    assert root["labels"] == ["neg", "pos"] and root["backend"] == "torch"
    meta = root["metadata"]
    assert meta["study"] == "tiny" and meta["trial"] == 2 and meta["objective"] == "f1_macro"
    assert meta["base_model"] == str(tiny_bert) and meta["max_length"] == 32 and meta["model_type"] == "bert"
    assert meta["strategy"] == "full" and meta["hyperparams"] == {"learning_rate": 0.01, "epochs": 1}
    assert meta["test"] == metrics["test"] and meta["label_names"] == ["neg", "pos"] and meta["test_rows"] == 30
    assert root["metadata_from"] == "metrics.json, trial.json, study.toml, config.json"
    assert root["predict"]["max_texts"] == MAX_TEXTS and root["predict"]["pairs"] is False
    assert httpx.get(server.url + "/health", timeout=10).json() == {"status": "ok"}


def test_a_classifier_still_shows_its_labels_and_their_response(server):
    root = httpx.get(server.url + "/", timeout=10).json()
    assert root["task"] == "classification" and root["labels"] == ["neg", "pos"] and "target" not in root
    example = json.loads(root["predict"]["response"])
    assert [p["label"] for p in example["predictions"]] == ["pos", "neg"]
    schema = httpx.get(server.url + "/openapi.json", timeout=10).json()
    answer = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    item = answer["schema"]["properties"]["predictions"]["items"]
    assert item["required"] == ["label", "score", "scores"] and item["properties"]["label"]["enum"] == ["neg", "pos"]


def test_predict_gives_the_labels_and_scores_predictor_gives(server, expected):
    response = post(server.url, {"texts": TEXTS})
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    labels, proba = expected(TEXTS)
    assert [p["label"] for p in got] == labels
    for prediction, row in zip(got, proba):
        assert list(prediction["scores"]) == ["neg", "pos"]
        np.testing.assert_allclose([prediction["scores"]["neg"], prediction["scores"]["pos"]], row, atol=1e-5)
        assert prediction["score"] == max(prediction["scores"].values())


def test_concurrent_requests_are_each_answered_with_their_own_texts(server, expected):
    """8 clients at once (more texts than a batch holds): each gets its own predictions, in its own order."""
    requests = [[f"{TEXTS[(i + j) % len(TEXTS)]} {i}" for j in range(1 + i % 3)] for i in range(8)]
    barrier = threading.Barrier(len(requests), timeout=30)
    answers: dict[int, object] = {}

    def client(i: int) -> None:
        with httpx.Client(timeout=30) as session:
            barrier.wait()
            try:
                answers[i] = session.post(f"{server.url}/predict", json={"texts": requests[i]})
            except Exception as exc:  # reported below, with the request it belongs to
                answers[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client got no answer in 60 s"
    for i, texts in enumerate(requests):
        response = answers[i]
        assert isinstance(response, httpx.Response) and response.status_code == 200, (i, response)
        got = response.json()["predictions"]
        labels, proba = expected(texts)
        assert [p["label"] for p in got] == labels, i
        np.testing.assert_allclose([p["scores"]["pos"] for p in got], proba[:, 1], atol=1e-5)


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"not json", 400, "the body is not JSON"),
        (b'{"texts": ["unclosed"', 400, "the body is not JSON"),
        (b"\xff\xfe\x00", 400, "the body is not"),
        (b"", 400, "the body is not JSON"),
        (["a list"], 422, "the body must be a JSON object"),
        ({"text": ["singular"]}, 422, "unknown field 'text'; the body has one field, 'texts'"),
        ({}, 422, "missing field 'texts'"),
        ({"texts": []}, 422, "'texts' is empty; give a list of 1 to 16 non-empty strings"),
        ({"texts": "one text"}, 422, "'texts' must be a list of 1 to 16 non-empty strings, not a string"),
        ({"texts": ["fine", 3, None]}, 422, "'texts[1]' (a number) and 'texts[2]' (null) are not strings"),
        ({"texts": ["fine", "  "]}, 422, "'texts[1]' is empty or only whitespace"),
        ({"texts": ["fine"] * (MAX_TEXTS + 1)}, 413, "'texts' holds 17 texts; at most 16 per request (--max-texts)"),
        ({"pairs": [["a premise", "a hypothesis"]]}, 422, "this model takes single texts, not pairs"),
    ],
)
def test_a_bad_request_is_a_4xx_with_a_one_line_json_error(server, body, status, message):
    response = post(server.url, body)
    assert response.status_code == status, response.text
    assert message in assert_one_line_error(response)


def test_an_oversized_body_and_unknown_endpoints_are_one_line_json_errors(server):
    body = json.dumps({"texts": ["x" * 1100 * 1024]}).encode()  # over the 1 MiB limit
    response = post(server.url, body)
    assert response.status_code == 413
    assert f"the body is {len(body)} bytes; at most 1048576 bytes" in assert_one_line_error(response)
    response = httpx.get(server.url + "/predictions", timeout=10)
    assert response.status_code == 404
    assert "there is no GET /predictions; the endpoints are GET /, GET /health and POST /predict" in (
        assert_one_line_error(response)
    )
    response = httpx.get(server.url + "/predict", timeout=10)
    assert response.status_code == 405 and "GET /predict is not allowed" in assert_one_line_error(response)
    assert httpx.get(server.url + "/health", timeout=10).json() == {"status": "ok"}  # still serving


def test_sigterm_stops_the_server_cleanly(server):
    """Last: a server stops on SIGTERM after answering what it was given, exit code 0."""
    server.process.terminate()
    assert server.process.wait(timeout=20) == 0, server.log.read_text()
    log = server.log.read_text()
    assert "serving " in log and "stopped" in log and "Traceback" not in log, log


# --- without a server --------------------------------------------------------------------------------------


class FakeModel:
    """Scores a text by its length; records every batch it is given; may be slow or fail."""

    label_names = ["short", "long"]

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.delay, self.fail, self.calls, self.threads = delay, fail, [], set()

    def proba(self, texts):
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the model broke")
        p = np.array([min(len(t), 10) / 10 for t in texts])
        return np.stack([1 - p, p], axis=1)


def run_batcher(model, jobs, batch_size=64, max_wait=0.05, during=None):
    from autoft.serve import Batcher

    async def main():
        batcher = Batcher(model, batch_size=batch_size, max_wait=max_wait)
        batcher.start()
        try:
            tasks = [asyncio.ensure_future(batcher(texts)) for texts in jobs]
            extra = [asyncio.ensure_future(during())] if during else []
            return await asyncio.wait_for(asyncio.gather(*tasks, *extra, return_exceptions=True), 10), batcher
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_rows():
    model = FakeModel()
    jobs = [["a"], ["bbbbb", "cc"], ["dddddddddd"]]
    results, batcher = run_batcher(model, jobs)
    assert model.calls == [["a", "bbbbb", "cc", "dddddddddd"]] and list(batcher.batches) == [4]
    assert [r[:, 1].tolist() for r in results] == [[0.1], [0.5, 0.2], [1.0]]
    assert model.threads == {"autoft-model_0"}  # the model runs in the worker thread, not the event loop's


def test_a_batch_holds_at_most_batch_size_texts_and_a_larger_request_runs_alone():
    model = FakeModel()
    jobs = [["a", "b"], ["c", "d"], ["e"], ["f", "g", "h", "i", "j", "k"], ["l"]]
    results, batcher = run_batcher(model, jobs, batch_size=4, max_wait=0)
    assert list(batcher.batches) == [4, 1, 6, 1]
    assert [len(r) for r in results] == [2, 2, 1, 6, 1]


def test_the_event_loop_runs_while_the_model_does_and_a_failure_fails_each_request_of_its_batch():
    model = FakeModel(delay=0.3, fail=True)
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    results, _ = run_batcher(model, [["a"], ["b", "c"]], during=ticker)
    assert [str(r) for r in results[:2]] == ["the model broke", "the model broke"]
    assert len(ticks) == 5 and ticks[-1] - ticks[0] < 0.25  # the loop was not blocked by the 0.3 s forward pass


def test_the_metadata_comes_from_the_model_cards_front_matter(model_dir, tmp_path):
    from autoft.saved import DamagedFile
    from autoft.serve import model_metadata

    copy = tmp_path / "best"
    shutil.copytree(model_dir, copy)
    (copy / "README.md").write_text("---\nlicense: apache-2.0\ntags: [autoft]\ndate: 2026-11-23\n---\n\n# tiny\n")
    assert model_metadata(copy) == ({"license": "apache-2.0", "tags": ["autoft"], "date": "2026-11-23"}, "README.md")
    (copy / "README.md").write_text("# tiny\n\nno front matter\n")
    assert model_metadata(copy)[1] == "metrics.json, trial.json, study.toml, config.json"
    (copy / "README.md").write_text("---\ntags: [autoft\n---\n")
    with pytest.raises(DamagedFile, match="README.md' cannot be read \\(invalid YAML front matter: "):
        model_metadata(copy)


def test_serve_refuses_in_one_line_before_loading_the_model(model_dir, cli, monkeypatch):
    result = cli("serve", model_dir, "--onnx")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"has no model.onnx for --onnx; make it with: autoft export {model_dir} --onnx" in result.err

    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = cli("serve", model_dir, "--port", taken.getsockname()[1])
    assert result.code == 2 and result.err.count("\n") == 1 and "choose another --port" in result.err, result.err

    for port in ("0", "65536", "http"):
        result = cli("serve", model_dir, "--port", port)
        assert result.code == 2 and result.err.startswith("error: autoft serve: argument --port"), result.err

    result = cli("serve", model_dir / "config.json")
    assert result.code == 2 and "is a file, not a folder; give a saved model folder" in result.err

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    result = cli("serve", model_dir)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "autoft serve needs fastapi, which is not installed: pip install 'autoft[serve]'" in result.err


def test_the_cli_does_not_import_the_server_packages():
    code = "import sys, autoft.cli; autoft.cli.build_parser(); print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# --- a sentence-pair model --------------------------------------------------------------------------------------

FIRSTS = ["the seller was superb", "box arrived broken", "great price honestly", "it arrived on time and was lovely"]
SECONDS = ["the price was great", "my order was faulty", "delivery was very poor", "item"]


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory, tiny_bert):
    """A saved sentence-pair model (task.json names two inputs), untrained, its head initialised wide so that
    labels and scores vary from pair to pair."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    best = tmp_path_factory.mktemp("served-pairs") / "best"
    torch.manual_seed(0)
    labels = {0: "different", 1: "same"}
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
    model.save_pretrained(best, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(best)
    (best / "task.json").write_text(json.dumps({"inputs": ["sentence1", "sentence2"]}))
    (best / "study.toml").write_text('[model]\nmax_length = 32\n[study]\nname = "pairs"\n')
    return best


@pytest.fixture(scope="module")
def pair_predictor(pair_dir):
    from autoft.predict import Predictor

    return Predictor(pair_dir, device="cpu")


@pytest.fixture(scope="module")
def pair_server(pair_dir, tmp_path_factory):
    with running_server(pair_dir, tmp_path_factory.mktemp("pair-server-log")) as running:
        yield running


def test_a_pair_model_says_it_takes_pairs(pair_server):
    from autoft.serve import PAIR_EXAMPLE

    root = httpx.get(pair_server.url + "/", timeout=10).json()
    assert root["labels"] == ["different", "same"] and root["metadata"]["study"] == "pairs"
    predict = root["predict"]
    assert predict["pairs"] is True and predict["inputs"] == ["sentence1", "sentence2"]
    assert predict["request"] == PAIR_EXAMPLE
    schema = httpx.get(pair_server.url + "/openapi.json", timeout=10).json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["texts", "pairs"] and set(body["properties"]) == {"texts", "pairs"}


def test_a_pair_model_labels_each_text_with_its_second_text(pair_server, pair_predictor):
    for firsts, seconds in ((FIRSTS, SECONDS), (SECONDS, FIRSTS)):
        response = post(pair_server.url, {"texts": firsts, "pairs": seconds})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        proba = pair_predictor.proba(firsts, seconds)
        assert [p["label"] for p in got] == [pair_predictor.label_names[i] for i in proba.argmax(axis=1)]
        np.testing.assert_allclose([[p["scores"]["different"], p["scores"]["same"]] for p in got], proba, atol=1e-5)


def test_concurrent_pair_requests_keep_each_pair_together(pair_server, pair_predictor):
    """8 clients at once, the same first texts with other second texts: each gets the scores of its own pairs."""
    requests = [
        ([FIRSTS[(i + j) % 4] for j in range(1 + i % 3)], [f"{SECONDS[(i * 3 + j) % 4]} {i}" for j in range(1 + i % 3)])
        for i in range(8)
    ]
    barrier = threading.Barrier(len(requests), timeout=30)
    answers: dict[int, object] = {}

    def client(i: int) -> None:
        texts, pairs = requests[i]
        with httpx.Client(timeout=30) as session:
            barrier.wait()
            try:
                answers[i] = session.post(f"{pair_server.url}/predict", json={"texts": texts, "pairs": pairs})
            except Exception as exc:  # reported below, with the request it belongs to
                answers[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client got no answer in 60 s"
    for i, (texts, pairs) in enumerate(requests):
        response = answers[i]
        assert isinstance(response, httpx.Response) and response.status_code == 200, (i, response)
        got = response.json()["predictions"]
        np.testing.assert_allclose(
            [p["scores"]["same"] for p in got], pair_predictor.proba(texts, pairs)[:, 1], atol=1e-5
        )


@pytest.mark.parametrize(
    "body, status, message",
    [
        (
            {"texts": ["a premise"]},
            422,
            "missing field 'pairs': this model reads sentence pairs (sentence1, sentence2)",
        ),
        ({"texts": ["a", "b"], "pairs": ["one"]}, 422, "'pairs' holds 1 second texts but 'texts' holds 2"),
        (
            {"texts": ["a"], "pairs": "one"},
            422,
            "'pairs' must be a list of 1 non-empty string (the second text of each text, in order), not a string",
        ),
        ({"texts": ["a", "b"], "pairs": ["fine", 3]}, 422, "'pairs[1]' (a number) is not a string"),
        ({"texts": ["a", "b"], "pairs": ["fine", " "]}, 422, "'pairs[1]' is empty or only whitespace"),
        ({"texts": ["a", " "], "pairs": ["fine", "ok"]}, 422, "'texts[1]' is empty or only whitespace"),
        ({"texts": ["a"], "pairs": ["b"], "pair": ["c"]}, 422, "unknown field 'pair'; the body has two fields"),
        ({"pairs": ["b"]}, 422, "missing field 'texts'"),
        (b"not json", 400, '"pairs": ['),  # the example shows the pairs
    ],
)
def test_a_bad_pair_request_is_a_4xx_with_a_one_line_json_error(pair_server, body, status, message):
    response = post(pair_server.url, body)
    assert response.status_code == status, response.text
    assert message in assert_one_line_error(response)


class FakePairModel(FakeModel):
    """Scores a pair by the length of its second text; records the pairs of every batch."""

    inputs = ("premise", "hypothesis")
    label_names = ["short", "long"]

    def proba(self, texts, pairs=None):
        self.calls.append((list(texts), pairs))
        assert pairs is not None and len(pairs) == len(texts)
        p = np.array([min(len(t), 10) / 10 for t in pairs])
        return np.stack([1 - p, p], axis=1)


def test_batched_pairs_stay_with_their_texts_and_never_share_a_batch_with_single_texts():
    from autoft.serve import Batcher

    model = FakePairModel()
    jobs = [(["x"], ["a"]), (["y", "z"], ["bbbbb", "cc"]), (["w"], ["dddddddddd"])]

    async def main():
        batcher = Batcher(model, batch_size=64, max_wait=0.05)
        batcher.start()
        try:
            tasks = [asyncio.ensure_future(batcher(texts, pairs)) for texts, pairs in jobs]
            return await asyncio.wait_for(asyncio.gather(*tasks), 10), batcher
        finally:
            await batcher.stop()

    results, batcher = asyncio.run(main())
    assert model.calls == [(["x", "y", "z", "w"], ["a", "bbbbb", "cc", "dddddddddd"])] and list(batcher.batches) == [4]
    assert [r[:, 1].tolist() for r in results] == [[0.1], [0.5, 0.2], [1.0]]

    class Both(FakeModel):
        def proba(self, texts, pairs=None):
            self.calls.append((list(texts), pairs))
            return np.zeros((len(texts), 2))

    both = Both()

    async def mixed():
        batcher = Batcher(both, batch_size=64, max_wait=0.05)
        batcher.start()
        try:
            tasks = [batcher(["a"]), batcher(["b"], ["c"]), batcher(["d"], ["e"]), batcher(["f"])]
            return await asyncio.wait_for(asyncio.gather(*tasks), 10)
        finally:
            await batcher.stop()

    asyncio.run(mixed())
    assert both.calls == [(["a"], None), (["b", "d"], ["c", "e"]), (["f"], None)]


def test_the_models_inputs_come_from_inputs_or_paired_and_default_to_single_texts():
    from autoft.serve import inputs_of, parse_request

    assert inputs_of(SimpleNamespace(label_names=["a", "b"])) == ("text",)
    assert inputs_of(FakeModel()) == ("text",)
    assert inputs_of(FakePairModel()) == ("premise", "hypothesis")
    assert inputs_of(SimpleNamespace(paired=True)) == ("text", "text_pair")
    assert inputs_of(SimpleNamespace(inputs=("q", "a"), paired=True)) == ("q", "a")
    assert parse_request(b'{"texts": ["one"]}') == (["one"], None)
    assert parse_request(b'{"texts": ["one"], "pairs": ["two"]}', inputs=("q", "a")) == (["one"], ["two"])


# --- a regression model -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_dir(tmp_path_factory, tiny_bert):
    """A saved regression model (one output, id2label {0: "score"}, task.json task regression) as a study leaves
    it, untrained, its head initialised wide with a bias of 2.5 so that predictions vary and are not probabilities."""
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    best = tmp_path_factory.mktemp("served-regression") / "best"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=1, id2label={0: "score"}, label2id={"score": 0}
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
        model.classifier.bias.fill_(2.5)
    model.save_pretrained(best, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(best)
    (best / "task.json").write_text(json.dumps({"task": "regression", "inputs": ["text"]}))
    study = {"study": {"name": "scores"}, "model": {"name": str(tiny_bert), "max_length": 32}}
    (best / "study.toml").write_text(tomli_w.dumps(study))
    scores = {"rmse": 0.8, "mae": 0.6, "r2": 0.5, "pearson": 0.7, "spearman": 0.7}
    metrics = {"study": "scores", "trial": 0, "task": "regression", "objective": "rmse", "test": scores}
    metrics |= {
        "test_rows": 15,
        "mean_baseline": {"prediction": 2.5, "rmse": 1.8, "mae": 1.5},
        "label_names": ["score"],
    }
    (best / "metrics.json").write_text(json.dumps(metrics))
    return best


@pytest.fixture(scope="module")
def regression_server(regression_dir, tmp_path_factory):
    with running_server(regression_dir, tmp_path_factory.mktemp("regression-server-log")) as running:
        yield running


def test_a_regression_model_answers_a_prediction_per_text(regression_server, regression_dir):
    from autoft.predict import Predictor

    response = post(regression_server.url, {"texts": TEXTS})
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert all(list(p) == ["prediction"] and isinstance(p["prediction"], float) for p in got), got
    reference = Predictor(regression_dir, device="cpu").proba(TEXTS)[:, 0]
    assert np.ptp(reference) > 0.1  # numbers that vary: not a softmax of one logit, which is always 1
    np.testing.assert_allclose([p["prediction"] for p in got], reference, atol=1e-5)


def test_a_regression_model_says_so_and_its_schema_shows_predictions(regression_server):
    root = httpx.get(regression_server.url + "/", timeout=10).json()
    assert root["task"] == "regression" and root["target"] == "score" and "labels" not in root
    meta = root["metadata"]
    assert meta["task"] == "regression" and meta["objective"] == "rmse" and meta["mean_baseline"]["rmse"] == 1.8
    assert json.loads(root["predict"]["response"]) == {"predictions": [{"prediction": 4.2}, {"prediction": 1.5}]}
    schema = httpx.get(regression_server.url + "/openapi.json", timeout=10).json()
    assert "score" in schema["info"]["summary"] and "regression" in schema["info"]["summary"]
    answer = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    item = answer["schema"]["properties"]["predictions"]["items"]
    assert item["required"] == ["prediction"] and item["properties"]["prediction"]["type"] == "number"
    assert answer["example"] == json.loads(root["predict"]["response"])


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"not json", 400, "the body is not JSON"),
        ({"texts": []}, 422, "'texts' is empty; give a list of 1 to 16 non-empty strings"),
        ({"texts": ["fine", "  "]}, 422, "'texts[1]' is empty or only whitespace"),
        ({"texts": ["a"], "pairs": ["b"]}, 422, "this model takes single texts, not pairs"),
    ],
)
def test_a_bad_regression_request_is_the_same_4xx(regression_server, body, status, message):
    response = post(regression_server.url, body)
    assert response.status_code == status, response.text
    assert message in assert_one_line_error(response)


class FakeRegressionPairModel:
    """Predicts a pair's number from the lengths of its texts; a test double with only label_names and proba
    (no ``regression``, no ``inputs``: a single label name makes it a regression model)."""

    label_names = ["similarity"]
    paired = True

    def proba(self, texts, pairs=None):
        assert pairs is not None and len(pairs) == len(texts)
        return np.array([[len(a) - len(b) + 0.5] for a, b in zip(texts, pairs)], dtype=np.float32)


def test_a_regression_pair_double_is_served_with_getattr_defaults(tmp_path):
    from fastapi.testclient import TestClient

    from autoft.serve import create_app, is_regression, predictions

    assert is_regression(FakeRegressionPairModel()) and not is_regression(FakeModel())
    assert is_regression(SimpleNamespace(label_names=["a", "b"], regression=True))
    assert not is_regression(SimpleNamespace(label_names=["only"], regression=False))
    assert predictions(np.array([[1.5], [-2.0]]), ["score"], regression=True) == [
        {"prediction": 1.5},
        {"prediction": -2.0},
    ]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    app = create_app(FakeRegressionPairModel(), tmp_path, batch_size=8, max_wait_ms=1)
    with TestClient(app) as client:
        root = client.get("/").json()
        assert root["task"] == "regression" and root["target"] == "similarity" and root["predict"]["pairs"] is True
        response = client.post("/predict", json={"texts": ["abcd", "a"], "pairs": ["ab", "abc"]})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [{"prediction": 2.5}, {"prediction": -1.5}]}
        response = client.post("/predict", json={"texts": ["abcd"]})
        assert response.status_code == 422 and "missing field 'pairs'" in response.json()["error"]


# --- a multi-label model ------------------------------------------------------------------------------------------

MULTI_LABELS = ["pos", "mixed", "neg"]


@pytest.fixture(scope="module")
def multi_label_dir(tmp_path_factory, tiny_bert):
    """A saved multi-label model (3 outputs, problem_type multi_label_classification, task.json with a threshold
    per label) as a study leaves it, untrained: each threshold is the median of its label's probability over
    TEXTS, so the texts get different sets of labels."""
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    best = tmp_path_factory.mktemp("served-multi-label") / "best"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert,
        num_labels=3,
        id2label=dict(enumerate(MULTI_LABELS)),
        label2id={n: i for i, n in enumerate(MULTI_LABELS)},
        problem_type="multi_label_classification",
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model.eval()
    with torch.no_grad():
        batch = tokenizer(TEXTS, truncation=True, max_length=32, padding=True, return_tensors="pt")
        medians = torch.sigmoid(model(**batch).logits).median(dim=0).values.tolist()
    model.save_pretrained(best, safe_serialization=True)
    tokenizer.save_pretrained(best)
    thresholds = dict(zip(MULTI_LABELS, medians))
    (best / "task.json").write_text(json.dumps({"task": "multi_label", "inputs": ["text"], "thresholds": thresholds}))
    study = {"study": {"name": "sets"}, "model": {"name": str(tiny_bert), "max_length": 32}}
    (best / "study.toml").write_text(tomli_w.dumps(study))
    scores = {"f1_micro": 0.8, "f1_macro": 0.7, "accuracy": 0.6, "hamming_loss": 0.1}
    metrics = {"study": "sets", "trial": 1, "task": "multi_label", "objective": "f1_micro", "test": scores}
    metrics |= {"test_rows": 15, "thresholds": thresholds, "label_names": MULTI_LABELS}
    (best / "metrics.json").write_text(json.dumps(metrics))
    return best


def test_a_multi_label_model_answers_label_sets_with_predictors_scores(multi_label_dir):
    from fastapi.testclient import TestClient

    from autoft.predict import Predictor
    from autoft.serve import create_app, load_model

    model = load_model(multi_label_dir, device="cpu", batch_size=4)
    expected = Predictor(multi_label_dir, device="cpu")(TEXTS)
    assert len({tuple(s) for s in expected.label_sets}) > 1  # the texts get different sets
    assert np.abs(expected.proba.sum(axis=1) - 1).max() > 0.05  # each label's sigmoid, not a softmax
    with TestClient(create_app(model, multi_label_dir, batch_size=4, max_wait_ms=1)) as client:
        response = client.post("/predict", json={"texts": TEXTS})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        assert all(list(p) == ["labels", "scores"] for p in got), got
        assert [p["labels"] for p in got] == expected.label_sets
        for prediction, row in zip(got, expected.proba):
            assert list(prediction["scores"]) == MULTI_LABELS
            np.testing.assert_allclose(list(prediction["scores"].values()), row, atol=1e-5)
        root = client.get("/").json()
        assert root["task"] == "multi_label" and root["labels"] == MULTI_LABELS
        assert list(root["thresholds"].values()) == pytest.approx(expected.thresholds)
        assert root["metadata"]["task"] == "multi_label" and root["metadata"]["objective"] == "f1_micro"
        response = client.post("/predict", json={"texts": ["fine", " "]})
        assert response.status_code == 422 and "'texts[1]' is empty" in response.json()["error"]


class FakeMultiLabelModel(FakeModel):
    """Scores each label of a text on its own: 'short' by how short the text is, 'long' by how long, 'caps' by
    its share of capitals; a test double with label_names, thresholds and proba alone."""

    label_names = ["short", "long", "caps"]
    thresholds = [0.5, 0.4, 0.3]

    def proba(self, texts):
        p = np.array([min(len(t), 10) / 10 for t in texts])
        caps = np.array([sum(c.isupper() for c in t) / len(t) for t in texts])
        return np.stack([1 - p, p, caps], axis=1)


def test_a_multi_label_double_says_so_and_its_schema_and_example_show_label_sets(tmp_path):
    from fastapi.testclient import TestClient

    from autoft.errors import ModelError
    from autoft.serve import create_app, predictions, response_example, thresholds_of

    assert thresholds_of(FakeMultiLabelModel()) == [0.5, 0.4, 0.3]
    assert (
        thresholds_of(FakeModel()) is None
        and thresholds_of(SimpleNamespace(label_names=["a"], thresholds=None)) is None
    )
    with pytest.raises(ModelError, match="2 thresholds for 3 labels"):
        thresholds_of(SimpleNamespace(label_names=["a", "b", "c"], thresholds=[0.5, 0.5]))
    # a probability equal to its threshold gives the label, as autoft predict does; a text may get none
    assert predictions(np.array([[0.5, 0.39, 0.3], [0.1, 0.2, 0.0]]), ["a", "b", "c"], thresholds=[0.5, 0.4, 0.3]) == [
        {"labels": ["a", "c"], "scores": {"a": 0.5, "b": 0.39, "c": pytest.approx(0.3)}},
        {"labels": [], "scores": {"a": 0.1, "b": pytest.approx(0.2), "c": 0.0}},
    ]
    example = response_example(["a", "b", "c"], thresholds=[0.5, 0.5, 0.5])
    assert [p["labels"] for p in example["predictions"]] == [["c"], ["a"]]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    app = create_app(FakeMultiLabelModel(), tmp_path, batch_size=8, max_wait_ms=1)
    with TestClient(app) as client:
        root = client.get("/").json()
        assert root["task"] == "multi_label" and root["labels"] == ["short", "long", "caps"]
        assert root["thresholds"] == {"short": 0.5, "long": 0.4, "caps": 0.3} and root["predict"]["pairs"] is False
        response = client.post("/predict", json={"texts": ["ab", "ABCDEFGHIJKL", "a Longer text"]})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        assert [p["labels"] for p in got] == [["short"], ["long", "caps"], ["long"]]
        assert got[0]["scores"] == {"short": 0.8, "long": 0.2, "caps": 0.0}
        schema = client.get("/openapi.json").json()
    assert "multi-label" in schema["info"]["summary"] and "short, long, caps" in schema["info"]["summary"]
    answer = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    item = answer["schema"]["properties"]["predictions"]["items"]
    assert item["required"] == ["labels", "scores"] and item["properties"]["labels"]["type"] == "array"
    assert item["properties"]["labels"]["items"]["enum"] == ["short", "long", "caps"]
    assert item["properties"]["scores"]["required"] == ["short", "long", "caps"]
    assert answer["example"] == json.loads(root["predict"]["response"])
    assert [p["labels"] for p in answer["example"]["predictions"]] == [["caps"], ["short"]]
    for prediction in answer["example"]["predictions"]:
        assert set(prediction) == {"labels", "scores"} and list(prediction["scores"]) == ["short", "long", "caps"]
