"""What the retrieval evaluation prints and draws from its report: the table of every mode's
scores, the tuning's choice beside the shipped constants, the targets missed, and
bench/results/retrieval.png; and the CJK questions' doc hit@5, kept per model in
bench/results/cjk_questions.json."""

from typing import Any

from bench.harness.results import provenance, pyplot, read_json, save_chart, write_json
from bench.harness.stack import MODEL

CJK_RESULTS = "cjk_questions"


def results_name(model: str) -> str:
    """bench/results/<this>.json holds the model's SQuAD figures: `retrieval` for the default."""
    return "retrieval" if model == MODEL else f"retrieval-{model.rsplit('/', 1)[-1]}"


def write_cjk(model: str, cjk: dict[str, Any]) -> None:
    """The model's entry of bench/results/cjk_questions.json, replaced; the others kept."""
    stored = read_json(CJK_RESULTS)
    models = stored.get("models", {})
    models[model] = {**provenance(), **cjk}
    written = write_json(CJK_RESULTS, {"models": dict(sorted(models.items()))})
    print(f"\nCJK questions, {model}, index of {cjk['index']} ({cjk['chunks']} chunks):")
    for mode, s in cjk["results"].items():
        print(f"{mode:<10}doc hit@5 {s['doc_hit5']:.3f} ({s['hits']}/{s['total']}) {s['by_lang']}")
    for mode, c in cjk["cjk_phrases"].items():
        print(f"CJK phrases at rank 1, {mode}: {c['rank1']}/{c['total']} {c['by_lang']}")
    print(f"written to {written}")


def write(report: dict[str, Any]) -> None:
    written = write_json(results_name(report["model"]), {**provenance(), **report})
    metrics = ("doc_hit1", "doc_hit5", "answer_top5", "mrr10")
    print(f"\n{report['questions']} questions, {report['chunks']} chunks")
    print(f"{'mode':<18}{'subset':<10}" + "".join(f"{m:>13}" for m in metrics))
    for mode, subsets in report["results"].items():
        for subset, s in subsets.items():
            print(f"{mode:<18}{subset:<10}" + "".join(f"{s[m]:>13.4f}" for m in metrics))
    tuned = report["tuned_on_tune_half"]
    print(f"shipped: {report['shipped']}")
    print(
        f"tuned on the tune half: k1={tuned['k1']} b={tuned['b']} "
        f"dense_weight={tuned['best']['dense_weight']} depth={tuned['best']['depth']}"
    )
    for mode, c in report["cjk_phrases"].items():
        print(f"CJK phrases at rank 1, {mode}: {c['rank1']}/{c['total']} {c['by_lang']}")
    hybrid_all = report["results"]["hybrid"]["all"]
    misses = [m for m, target in report["targets_hybrid_all"].items() if hybrid_all[m] < target]
    cjk = report["cjk_phrases"]["hybrid"]
    if cjk["rank1"] < cjk["total"]:
        misses.append("cjk_phrases_rank1")
    print("targets:", f"missed {misses}" if misses else "all met")
    print(f"written to {written} and {chart(report)}")


def chart(report: dict[str, Any]) -> str:
    plt = pyplot()

    metrics = ("doc_hit1", "doc_hit5", "answer_top5", "mrr10")
    targets = report["targets_hybrid_all"]
    modes = list(report["results"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(modes)
    for n, mode in enumerate(modes):
        values = [report["results"][mode]["all"][m] for m in metrics]
        bars = ax.bar([i + n * width for i in range(len(metrics))], values, width, label=mode)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    for i, m in enumerate(metrics):
        if m in targets:
            ax.hlines(targets[m], i - 0.1, i + 0.8, colors="black", linestyles="dashed")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(metrics))], metrics)
    ax.set_ylim(0.5, 1.02)
    ax.set_title(f"SQuAD v1.1 dev, {report['questions']} questions (dashed: hybrid targets)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_chart(fig, results_name(report["model"]), dpi=120)
