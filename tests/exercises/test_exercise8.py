"""exercise8: classic measuring mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import assert_fails

WRONG = {
    "benchmark_times_its_warmup": (
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n    runs = []\n"
        "    for _ in range(repeats):\n        start = time.perf_counter()\n        fn()\n"
        "        runs.append((time.perf_counter() - start) * 1000)\n"
        "    return {'median_ms': statistics.median(runs), 'min_ms': min(runs), 'runs_ms': runs}\n",
        {"warmup_excluded": "counts its warm-up"}),
    "benchmark_takes_the_mean": (
        "_median = benchmark\n\ndef benchmark(fn, *, device, warmup=3, repeats=10):\n"
        "    got = _median(fn, device=device, warmup=warmup, repeats=repeats)\n"
        "    return {**got, 'median_ms': sum(got['runs_ms']) / repeats}\n",
        {"median_resists_outlier": "mean"}),
    "batchnorm_top_level_only_and_efficiency_not_divided": (
        "def convert_batchnorm_for_ddp(model):\n    for name, m in list(model.named_children()):\n"
        "        if isinstance(m, nn.modules.batchnorm._BatchNorm):\n"
        "            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(m))\n    return model\n\n"
        "def speedup(t_one, t_many, n):\n    return {'speedup': t_one / t_many, 'efficiency': t_one / t_many}\n",
        {"batchnorm_converted": "still BatchNorm3d", "speedup_arithmetic": "divided by n"}),
    "benchmark_reports_a_constant": (  # one made-up 28 ms once fitted every window; the durations now vary
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n    for _ in range(warmup + repeats):\n        fn()\n"
        "    return {'median_ms': 28.0, 'min_ms': 28.0, 'runs_ms': [28.0] * repeats}\n",
        {"warmup_excluded": "time each call"}),
    "batchnorm_look_alike_named_syncbatchnorm": (
        "class SyncBatchNorm(nn.Module):\n    def __init__(self, bn):\n        super().__init__()\n"
        "        self.bn = bn\n        self.weight, self.bias = bn.weight, bn.bias\n\n"
        "    def forward(self, x):\n        return self.bn(x)\n\n"
        "def convert_batchnorm_for_ddp(model):\n"
        "    for name, m in list(model.named_children()):\n"
        "        if isinstance(m, nn.modules.batchnorm._BatchNorm):\n"
        "            setattr(model, name, SyncBatchNorm(m))\n"
        "        else:\n            convert_batchnorm_for_ddp(m)\n    return model\n",
        {"batchnorm_converted": "must become torch's nn.SyncBatchNorm"}),
    "benchmark_in_seconds": (
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n    for _ in range(warmup):\n        fn()\n"
        "    runs = []\n    for _ in range(repeats):\n        start = time.perf_counter()\n        fn()\n"
        "        runs.append(time.perf_counter() - start)\n"
        "    return {'median_ms': statistics.median(runs), 'min_ms': min(runs), 'runs_ms': runs}\n",
        {"known_duration": "looks like seconds", "warmup_excluded": "in milliseconds"}),
    "batchnorm_new_layers_without_the_stats": (
        "def convert_batchnorm_for_ddp(model):\n    for name, m in list(model.named_children()):\n"
        "        if isinstance(m, nn.modules.batchnorm._BatchNorm):\n"
        "            setattr(model, name, nn.SyncBatchNorm(m.num_features, m.eps, m.momentum))\n"
        "        else:\n            convert_batchnorm_for_ddp(m)\n    return model\n",
        {"batchnorm_converted": "changed in the conversion: weights and running stats must be kept"}),
    "batchnorm_new_layers_with_default_settings": (
        "def convert_batchnorm_for_ddp(model):\n    for name, m in list(model.named_children()):\n"
        "        if isinstance(m, nn.modules.batchnorm._BatchNorm):\n"
        "            sync = nn.SyncBatchNorm(m.num_features)\n            sync.load_state_dict(m.state_dict())\n"
        "            setattr(model, name, sync)\n"
        "        else:\n            convert_batchnorm_for_ddp(m)\n    return model\n",
        {"batchnorm_converted": "eps or momentum changed in the conversion"}),
    "batchnorm_converted_model_left_in_eval_mode": (
        "_convert = convert_batchnorm_for_ddp\n\n"
        "def convert_batchnorm_for_ddp(model):\n    return _convert(model).eval()\n",
        {"batchnorm_converted": "eval mode"}),
    "batchnorm_unconverted": (
        "def convert_batchnorm_for_ddp(model):\n    return model\n",
        {"batchnorm_converted": "still BatchNorm2d"}),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, phrases = WRONG[mistake]
    report = grade_source("exercise8", solution_source("exercise8") + "\n\n" + patch)
    assert_fails(report, phrases)


# --- the injected GPU work (labkit.inputs._Busy, behind gpu_work and the gated dataset's busy=) ----------------

def scripted(busy, per_side, idle_samples=0):
    """Stands in for _Busy._sample: seconds per product by matrix side; at each side the first `idle_samples` read
    twice as slow (a GPU still at idle clocks, a new kernel still loading)."""
    calls = []

    def sample(count):
        calls.append(side := busy.a.shape[0])
        return per_side[side] * (2 if calls.count(side) <= idle_samples else 1)

    return sample


def test_the_injected_work_is_calibrated_after_a_warm_up_so_idle_clocks_do_not_shorten_it(monkeypatch):
    from labkit import inputs

    busy = inputs._Busy("cpu", [0.12])
    # eight slow readings at first: more than trimming drops, all spent in the warm-up
    monkeypatch.setattr(busy, "_sample", scripted(busy, {256: 1e-5, 512: 1e-3}, idle_samples=8))
    assert busy._size() == pytest.approx(1e-3)  # without the warm-up it read 2e-3, and queued half the work
    assert busy.a.shape == (512, 512)  # 256 was too small: 300 launches of it could not fill 0.12 s
    launched = []
    monkeypatch.setattr(busy, "_products", launched.append)
    busy.device, busy.per = inputs.torch.device("cuda", 0), 1e-3  # queue() as on a GPU (no CUDA call is made)
    busy.queue(0)
    assert launched == [120]  # 0.12 s of products at the calibrated 1 ms each


def test_the_calibration_drops_outliers_like_torchs_own_helper(monkeypatch):
    from labkit import inputs

    busy = inputs._Busy("cpu", [0.01])
    readings = iter([1e-3] * 30 + [9e-3, 1e-6, 1e-3, 1e-3, 8e-3, 1e-3, 1e-3, 2e-6, 1e-3, 1e-3])
    monkeypatch.setattr(busy, "_sample", lambda count: next(readings))
    monkeypatch.setattr(inputs, "WARM_SECONDS", 0.09)  # 30 warm-up readings of 3 ms each
    assert busy._calibrated() == pytest.approx(1e-3)  # the two slowest and the two fastest left out


def test_a_sample_is_timed_by_cuda_events_around_products_queued_behind_one_more(monkeypatch):
    import contextlib

    from labkit import inputs

    busy, order, made = inputs._Busy("cpu", [0.01]), [], []

    class Event:
        def __init__(self, enable_timing=False):
            assert enable_timing
            self.name = "end" if made else "start"
            made.append(self)

        def record(self, stream=None):
            order.append(self.name)

        def synchronize(self):
            order.append("wait")

        def elapsed_time(self, other):
            return 6.0  # milliseconds

    monkeypatch.setattr(inputs.torch.cuda, "Event", Event)
    monkeypatch.setattr(inputs.torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(busy, "_products", order.append)
    assert busy._sample(3) == pytest.approx(2e-3)
    assert order == [1, "start", 3, "end", "wait"]  # the GPU is busy while the timed products are launched
