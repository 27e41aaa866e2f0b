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
