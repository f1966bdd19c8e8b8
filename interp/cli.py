"""The ``interp`` command (also ``python -m interp``).

Examples::

    interp measure --family bias_add --tasks add1,add4,add7 --mix 1/3,1/3,1/3 --n-prompts 50
    interp measure --family retrieval --tasks pos1,pos8 --mix 0.5,0.5 --json
    interp train --config experiments/configs/tiny.json --out runs/tiny
    interp figures --quick
    interp demo
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction

from interp.models import WeightsNotFoundError


class CliError(Exception):
    """A bad command line: printed as one line, exit status 2."""


def parse_mix(text: str | None, n_tasks: int) -> list[float]:
    """``"1/3,1/3,1/3"`` or ``"0.5,0.5"`` → floats (uniform when ``None``)."""
    if text is None:
        return [1.0 / n_tasks] * n_tasks
    try:
        values = [float(Fraction(part.strip())) for part in text.split(",")]
    except (ValueError, ZeroDivisionError):
        raise CliError(
            f"--mix: malformed {text!r}; expected comma-separated fractions like 1/3,1/3,1/3 or 0.5,0.5"
        ) from None
    if len(values) != n_tasks:
        raise CliError(f"--mix: {len(values)} values for {n_tasks} tasks; give one fraction per task")
    if abs(sum(values) - 1) < 1e-4:  # 1/3 written as 0.333 is fine; renormalise tiny rounding
        values = [v / sum(values) for v in values]
    return values


def _parse_list(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def cmd_measure(args: argparse.Namespace) -> None:
    from interp.metrics import summarize
    from interp.models import load_model, model_info
    from interp.prompts import build_prompts
    from interp.scoring import score_answers
    from interp.tasks import get_family, resolve_tasks

    fam = get_family(args.family)
    tasks = resolve_tasks(fam, _parse_list(args.tasks))
    mix = parse_mix(args.mix, len(tasks))
    prompts = build_prompts(
        fam, tasks, proportions=mix, n_examples=args.n_examples, n_prompts=args.n_prompts, seed=args.seed
    )
    model = load_model(args.model, device=args.device)
    scores = score_answers(model, prompts, include_newline=args.newline)
    summary = summarize(scores.probs, mix, tasks=tasks, seed=args.seed)
    result = {
        "model": model_info(model).model_id,
        "family": fam.name,
        "tasks": list(tasks),
        "mix": mix,
        "n_examples": args.n_examples,
        "n_prompts": args.n_prompts,
        "seed": args.seed,
        "include_newline": args.newline,
        **summary,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"model {result['model']} · family {fam.name} · {args.n_prompts} prompts × {args.n_examples} examples"
        f" · seed {args.seed}"
    )
    print(f"{'task':<14}{'target':>8}{'mean P':>9}{'95% CI':>18}{'var':>8}")
    for task, t in zip(tasks, mix, strict=True):
        s = summary["tasks"][task]
        print(f"{task:<14}{t:>8.3f}{s['mean']:>9.3f}   [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]{s['var']:>8.3f}")
    o = summary["other"]
    print(f"{'other':<14}{0:>8.3f}{o['mean']:>9.3f}   [{o['ci95'][0]:.3f}, {o['ci95'][1]:.3f}]{o['var']:>8.3f}")
    kl = summary["kl"]
    print(
        f"KL(t||p) = {kl['mean']:.3f} [{kl['ci95'][0]:.3f}, {kl['ci95'][1]:.3f}]  "
        f"(renormalised {summary['kl_renormalized']['mean']:.3f})"
    )


def cmd_train(args: argparse.Namespace) -> None:
    from interp.train import TrainConfig, train

    cfg = TrainConfig.from_json(args.config)
    cfg.validate()
    final = train(cfg, args.out, resume=not args.no_resume, progress=not args.quiet, device=args.device)
    print(f"model written to {final}")


def cmd_figures(args: argparse.Namespace) -> None:
    from interp.studies import run_studies

    run_studies(args.studies or None, model=args.model, quick=args.quick, out=args.out)


def cmd_demo(args: argparse.Namespace) -> None:
    from interp.studies import demo

    demo(out=args.out, model=args.model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interp",
        description="Task superposition toolkit: measure, train and plot (offline; default model: embedded).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser(
        "measure",
        help="answer probabilities on mixed prompts",
        description="Mean probability of each task's answer on prompts mixing tasks in the given "
        "proportions, with 95%% bootstrap CIs, 'other' mass and KL(t||p).",
        epilog="example: interp measure --family bias_add --tasks add1,add4,add7 --mix 1/3,1/3,1/3 --n-prompts 50",
    )
    m.add_argument("--family", required=True, help="task family, e.g. operands, retrieval, bias_add, country")
    m.add_argument("--tasks", help="comma-separated task names of the family (default: all)")
    m.add_argument("--mix", help="comma-separated fraction per task, e.g. 1/3,1/3,1/3 (default: uniform)")
    m.add_argument("--n-examples", type=int, default=20, help="in-context examples per prompt (default 20)")
    m.add_argument("--n-prompts", type=int, default=100, help="prompts to average over (default 100)")
    m.add_argument("--seed", type=int, default=0, help="seed of the prompts and bootstrap (default 0)")
    m.add_argument("--model", default="embedded", help="embedded (default), gpt2, or a local HF GPT-2 directory")
    m.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    m.add_argument("--newline", action="store_true", help="score the answer's terminating newline too")
    m.add_argument("--json", action="store_true", help="print only JSON on stdout")
    m.set_defaults(func=cmd_measure)

    t = sub.add_parser(
        "train",
        help="train a model from scratch on single-task prompts",
        epilog="example: interp train --config experiments/configs/embedded.json --out runs/embedded",
    )
    t.add_argument("--config", required=True, help="JSON training config (see experiments/configs/)")
    t.add_argument("--out", required=True, help="run directory (checkpoints, log.json, final/)")
    t.add_argument("--no-resume", action="store_true", help="start over even if the run directory has a state")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cpu (default; bit-reproducible per seed and thread count) or cuda (fast, for exploring configs)",
    )
    t.set_defaults(func=cmd_train)

    f = sub.add_parser(
        "figures",
        help="regenerate figures (HTML, PNG, JSON) under --out",
        epilog="example: interp figures mixture_sweep --quick --out /tmp/figs",
    )
    f.add_argument("studies", nargs="*", help="studies to run (default: all)")
    f.add_argument("--model", default="embedded", help="model spec (default embedded)")
    f.add_argument("--quick", action="store_true", help="few prompts: a smoke run in well under 2 minutes")
    f.add_argument("--out", default="figures", help="output directory (default figures/)")
    f.set_defaults(func=cmd_figures)

    d = sub.add_parser(
        "demo", help="the main job: headline figures and numbers on the embedded model", epilog="example: interp demo"
    )
    d.add_argument("--model", default="embedded", help="model spec (default embedded)")
    d.add_argument("--out", default="figures", help="output directory (default figures/)")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CliError, ValueError, WeightsNotFoundError) as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
