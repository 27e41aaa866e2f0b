"""Judging a device list's shards and replicas (DataParallel's scatter and replicate written by hand).

Used by exercise5's checks and open to instructors' hidden checks. Nothing here computes an answer the child
could not compute itself: the shards are tensor.chunk's, the replicas copies of the grader's own module; what the
child reports (devices, tags it was asked to set) is compared with the grader's copies of the inputs.
"""

from __future__ import annotations

import torch

from labkit.checks import expect, fail
from labkit.inputs import build
from labkit.recipe import Program, module, ref


def net_recipe(seed: int, d_in: int = 3, d_out: int = 2, norm: bool = False) -> dict:
    """A float64 Linear-Tanh-Linear (BatchNorm optional) whose weights are drawn here from `seed` and travel."""
    layers = [["Linear", d_in, 6]] + ([["BatchNorm1d", 6]] if norm else []) + [["Tanh"], ["Linear", 6, d_out]]
    g = torch.Generator().manual_seed(seed)
    # BatchNorm's running stats get values of their own: a replica that drops them shows.
    state = {k: torch.rand(v.shape, generator=g, dtype=torch.float64) - 0.4
             for k, v in build(module(layers, seed=0, dtype="float64")).state_dict().items() if v.is_floating_point()}
    return module(layers, seed=seed, dtype="float64", state=state)


def state_of(facts: dict) -> dict:
    """A reported module's state_dict: its parameters and persistent buffers by name."""
    return {**{n: t for n, t in facts["params"]}, **{n: t for n, t, keep in facts["buffers"] if keep}}


def judge_split(sub, n_samples: int, devices, dim: int = 0) -> None:
    """split_batch on a batch of n_samples along `dim`: dim 1 is a time-major batch, X (T, N, 3) and y (T, N)."""
    lead = [] if dim == 0 else [sub.rng.randint(2, 5)]
    g = sub.generator().manual_seed(sub.rng.randrange(2**31))
    X, y = (torch.randn(*lead, n_samples, *rest, generator=g, dtype=torch.float64) for rest in ([3], []))
    prog = Program().call("split_batch", X, y, devices, save="out", **({"dim": dim} if dim else {}))
    got = sub.run(prog.report("out").report("out", "devices", key="where"))["values"]
    call = f"split_batch on a batch of {n_samples} for {len(devices)} devices" + (f", dim={dim}" if dim else "")
    out, where = got["out"], {tuple(p): d for p, d in got["where"]}  # where: the child's tensor.device of each
    expect(isinstance(out, (list, tuple)) and len(out) == 2 and all(isinstance(s, (list, tuple)) for s in out)
           and all(torch.is_tensor(t) for s in out for t in s), f"{call} should return (X shards, y shards), "
           "two lists of tensors")
    xs, ys = X.chunk(len(devices), dim), y.chunk(len(devices), dim)
    want = [c.shape[dim] for c in xs]
    sizes = [t.shape[dim] if t.dim() > dim else 0 for t in out[0]]
    if dim and [len(t) for t in out[0]] == [len(c) for c in X.chunk(len(devices))]:
        fail(f"{call}: the shards split dim 0 (sizes {[len(t) for t in out[0]]}); the batch is dim {dim} here, "
             f"as nn.DataParallel(model, dim={dim}) scatters it: X.chunk(len(devices), dim)")
    expect(sizes == want, f"{call}: shard sizes {sizes}, expected {want} (tensor.chunk semantics: ceil(N/n) per "
                          "shard, the last one smaller; fewer samples than devices give fewer shards)")
    ysizes = [t.shape[dim] if t.dim() > dim else 0 for t in out[1]]
    expect(ysizes == sizes, f"{call}: y shards have sizes {ysizes} but X shards {sizes}; they must line up")
    for i, (x, t) in enumerate(zip(xs, ys, strict=True)):
        # The shards' values are judged here; their device is the child's word, true with one .to(devices[i]).
        at, d = (where.get((0, i)), where.get((1, i))), devices[i]
        expect(at == (str(d), str(d)), f"{call}: shard {i} is on {at[0]} (X) and {at[1]} (y), expected {d}")
        expect(d.type == "meta" or (torch.equal(out[0][i], x) and torch.equal(out[1][i], t)),
               f"{call}: shard {i} should hold X.chunk(n, {dim})[{i}] and the matching y.chunk(n, {dim})[{i}]")


def judge_replicate(sub, devices) -> None:
    """Replicate the grader's net twice. First the replicas, judged against the grader's own copy. Then each
    replica object is tagged with its index and its first weight nudged by 2**i: a tag that comes back on
    another replica (or on the original) shows one object; a nudge that shows elsewhere, shared tensors."""
    recipe, n, moved = net_recipe(sub.rng.randrange(2**31), norm=True), len(devices), []
    ref_state = build(recipe).state_dict()
    prog = Program().let("net", recipe).call("replicate", ref("net"), devices, save="reps")
    got = sub.run(prog.report("reps").report("net", "module_shapes"))["values"]
    reps = got["reps"]
    expect(isinstance(reps, (list, tuple)), f"replicate returned {getattr(reps, 'type_name', type(reps).__name__)}"
                                            ", expected a list with one module per device")
    expect(len(reps) == n, f"replicate returned {len(reps)} replicas for {n} devices")
    for i, r in enumerate(reps):
        expect(isinstance(r, dict) and r.get("report") == "module", f"replica {i} is not a module")
        expect(sorted(state_of(r)) == sorted(ref_state), f"replica {i} has state {list(state_of(r))}, expected a "
                                                         f"copy's {list(ref_state)}")
    prog = Program().let("net", recipe).call("replicate", ref("net"), devices, save="reps")
    for i, d in enumerate(devices):
        prog.call(ref("reps", i, "__setattr__"), "labkit_tag", i)
        if d.type != "meta":  # a meta tensor holds no values to nudge
            prog.call(ref("reps", i, "0", "weight", "add_"), float(2**i), no_grad=True)
            moved.append(i)
    for i in range(n):  # read once all are tagged: one object keeps only the last tag it was given
        prog.let(f"tag{i}", ref("reps", i, "labkit_tag")).report(f"tag{i}")
    prog.let("tag_net", ref("net", "labkit_tag", missing=None)).report("tag_net")
    after = sub.run(prog.report("reps").report("net", "module"))["values"]
    expect([after[f"tag{i}"] for i in range(n)] == list(range(n)), "replicate returned the same module object "
           "more than once ([module] * n): a change to one replica is a change to all; make one copy per device "
           "(copy.deepcopy)")
    expect(after["tag_net"] is None, "replicate returned the original module as a replica: copy it (copy.deepcopy)")
    expect(got["net"]["devices"] == ["cpu"], f"replicate moved the original model to {got['net']['devices']}: "
                                             "copy it first (copy.deepcopy; copy.copy shares the parameters)")
    for i, (r, d) in enumerate(zip(reps, devices, strict=True)):
        # Devices and requires_grad are the child's word: true with one .to(d); deepcopy keeps requires_grad.
        expect(r["devices"] == [str(d)], f"replica {i} has tensors on {r['devices']}, expected {d}")
        expect(r["requires_grad"] == [p for p, _ in r["params"]],
               f"replica {i} has parameters with requires_grad=False: it could not learn")
        for k, v in ref_state.items():
            same = state_of(r)[k].shape == v.shape if d.type == "meta" else torch.equal(state_of(r)[k], v)
            expect(same, f"replica {i}'s {k} differs from the original's: replicas start with equal weights")
    facts = {-1: after["net"], **{i: after["reps"][i] for i in moved}}  # -1: the original
    nudges = {j: round(float((dict(f["params"])["0.weight"] - ref_state["0.weight"]).mean())) for j, f in facts.items()}
    for i, j in [(i, j) for i in moved for j in facts if j != i and nudges[j] & (1 << i)][:1]:
        fail(f"changing replica {i}'s weight also changed {'the original' if j < 0 else f'replica {j}'}: they "
             "share tensors (a shallow copy?); each replica needs its own copy of every parameter and buffer")
