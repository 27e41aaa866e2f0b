"""The GPU self-test's known-wrong variant of each GPU check (`labkit selftest --gpu`, labkit.authoring.gpu_proof)."""

from __future__ import annotations

# The known-wrong variant of each GPU check: (pattern, replacement, what is wrong) applied to the solution with
# re.sub, every match. Each anchor says no more than the check's own hint or message does: this module ships to
# students. A pattern that no longer matches is reported (the row says which), never silently dropped.
MUTANTS = {
    "exercise1.picks_cuda": (r'torch\.device\("cuda", 0\)', 'torch.device("cuda")', "cuda without an index"),
    "exercise1.gpu_copies": (r"\bpin_memory=\w+", "pin_memory=False", "batches not pinned"),
    "exercise1.gpu_builds_on_current_device": (r"torch\.cuda\.device\(device\)", "contextlib.nullcontext()",
                                               "no current GPU set"),
    "exercise1.gpu_sums_across": (r"\+= t\.to\(device\)", "+= t", "operands not moved"),
    "exercise2.wrap_splits": (r"\bnn\.DataParallel\(", "(lambda m, device_ids=None: m)(", "never wrapped"),
    "exercise3.gpu_count_in_child": (r",\s*\*\*cuda_env\(visible\)", "", "the child inherits the parent's mask"),
    "exercise4.gpu_epoch_times_synchronised": (r"\btorch\.cuda\.synchronize\(", "(lambda *_: None)(", "no sync"),
    "exercise4.two_gpus_faster": (r"\bnn\.DataParallel\(", "(lambda m, device_ids=None: m)(", "one GPU only"),
    "exercise5.gpu_split_replicate": (r"\.to\(devices\[i\]\)", "", "shards stay where they were"),
    "exercise5.gpu_step": (r"\.copy_\(total\)", ".copy_(total / len(tensors))", "averaged, not summed"),
    "exercise6.ddp_nccl": (r"\bsampler\.set_epoch\(epoch\)", "None", "no set_epoch"),
    "exercise7.gpu_pipeline_faster": (r"\Z", "\n\ndef pipelined_forward(model, x, micro_batches):\n"
                                            "    return model(x)\n", "the naive split, no pipelining"),
    "exercise8.cuda_synchronised": (r"\btorch\.cuda\.synchronize\(", "(lambda *_: None)(", "no sync"),
}
