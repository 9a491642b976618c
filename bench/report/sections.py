"""Each benchmark's section of docs/benchmarks.md, from its bench/results/<name>.json: what was
measured, in a paragraph or two, and its figures in a table. The suites that run on their own
(`make eval`, `make reliability`) have theirs in `suites`."""

from bench.report.markdown import Result, measured, num, pair, para, pct, table


def latency(r: Result) -> list[str]:
    names = {"warm": "**warm workers** (default)", "default": "a process per run (Dagster's)"}
    rows = [
        [
            names.get(launcher, launcher),
            num(run["solo"]["p50_seconds"], 2),
            num(run["solo"]["p95_seconds"], 2),
            num(run["burst"]["max_seconds"], 2),
            num(run["floor"]["solo_p50_seconds"], 3),
        ]
        for launcher, run in r.items()
    ]
    warm = r.get("warm", next(iter(r.values())))
    goals = warm["goals"]
    out = para(
        "One small note uploaded through the API until `/search` returns it as the top hit for a",
        "word of its own: ten uploads one at a time, then a burst of ten within 2 s, in seconds.",
        f"Goals: p50 ≤ {num(goals['solo_p50_seconds'], 0)} s, p95 ≤",
        f"{num(goals['solo_p95_seconds'], 0)} s, every burst upload within",
        f"{num(goals['burst_max_seconds'], 0)} s. The floor is the same note extracted, chunked,",
        "embedded, written to Chroma and found in one warm process.",
    ) + measured(warm)
    out += table(["launcher", "solo p50", "solo p95", "burst: slowest", "floor"], rows)
    phases = warm["solo"]["phase_p50_seconds"]
    out += ["Where a warm solo upload's time goes (p50, seconds):", ""]
    out += table(phases, [[num(v, 2) for v in phases.values()]])
    cli = warm.get("cli")
    if cli:
        out += para(
            "Through the command line (`rag-pipeline add`, then `dagster asset materialize`, to",
            f"searchable): {num(cli['warm_worker']['p50_seconds'], 1)} s p50 with a warm worker",
            f"alive, {num(cli['in_process']['p50_seconds'], 1)} s when the command loads the model",
            "itself.",
        )
    return out


def ingest(r: Result) -> list[str]:
    pipeline, floor, pickup = r["pipeline"], r["floor"], r["pickup_latency_seconds"]
    out = para(
        f"{r['documents']} documents (SQuAD articles and PDFs) dropped into a real landing zone",
        "with the real daemon, warm worker, Chroma server and model, against the same extraction,",
        "chunking and embedding in one plain process.",
    )
    out += table(
        ["", "documents / minute", "chunks / s", "chunks"],
        [
            [
                "pipeline",
                num(pipeline["documents_per_minute"], 2),
                num(pipeline["chunks_per_second"], 1),
                num(pipeline["chunks"]),
            ],
            [
                "floor",
                num(floor["documents_per_minute"], 2),
                num(floor["chunks_per_second"], 1),
                num(floor["chunks"]),
            ],
            [
                "**ratio**",
                f"**{num(r['ratio']['documents_per_minute'], 2)}**",
                num(r["ratio"]["chunks_per_second"], 2),
                "",
            ],
        ],
    )
    runs = r["runs"]
    per_run = ", ".join(str(n) for n in runs["documents_per_run"])
    return out + para(
        f"{runs['count']} runs of {per_run} documents, cut by the byte budget,",
        f"{num(pipeline['mean_concurrent_runs'], 1)} at a time on average. Landed to run",
        f"enqueued: p50 {num(pickup['landed_to_enqueued']['p50'], 1)} s, p95",
        f"{num(pickup['landed_to_enqueued']['p95'], 1)} s.",
    )


def small(r: Result) -> list[str]:
    pipeline, floor = r["pipeline"], r["floor"]
    out = para(
        f"{num(r['documents'])} short abstracts (Vaswani/NPL), one file each, dropped into the",
        f"landing zone at once. Goal: {num(r['goal'], 2)} of the floor's documents per second;",
        f"required: {num(r['required'], 2)}.",
    ) + measured(r)
    out += table(
        ["documents / s", "floor", "**ratio**", "first searchable", "all indexed", "runs"],
        [
            [
                num(pipeline["documents_per_second"], 1),
                num(floor["documents_per_second"], 1),
                f"**{num(r['ratio_documents_per_second'], 3)}**",
                f"{num(pipeline['seconds_to_first_searchable'], 1)} s",
                f"{num(pipeline['seconds_to_all_indexed'], 1)} s",
                num(r["runs"]["count"]),
            ]
        ],
    )
    return out


def stages(r: Result) -> list[str]:
    pipeline, floor = r["pipeline_seconds"], r["floor_seconds"]
    out = para(
        f"Seconds per stage through Dagster for {len(r['documents'])} documents",
        f"({num(r['chunks'])} chunks, a 400-page PDF among them) against calling `core` directly.",
    )
    order = ["raw_document", "document_text", "document_chunks", "chunk_embeddings", "vector_index"]
    rows = [
        [f"`{name}`", num(pipeline.get(name), 2), num(floor.get(name), 2)]
        for name in order
        if name in pipeline
    ]
    rows.append(
        ["whole run", num(r["pipeline_wall_seconds"], 2), f"ratio {num(r['ratio_total'], 2)}"]
    )
    return out + table(["stage", "pipeline", "floor"], rows)


def extract(r: Result) -> list[str]:
    out = para(
        "Extraction in its time-bounded child process against the same extraction in-process,",
        "in seconds per document, and how soon a runaway document's 1 s bound stops it, while it",
        "computes (processor time) and while it is stopped (the wall-clock backstop).",
    )
    rows = [
        [f"`{name}`", num(d["sandbox_s"], 3), num(d["floor_s"], 3), num(d["overhead_ms"], 1)]
        for name, d in r["documents"].items()
    ]
    out += table(["document", "sandboxed", "in-process", "overhead, ms"], rows)
    rows = [
        [label, num(r[key]["bound_s"], 1), num(r[key]["wall_s"], 2)]
        for key, label in (
            ("runaway_computing", "runaway, computing"),
            ("runaway_stopped", "runaway, stopped (SIGSTOP)"),
        )
        if key in r
    ]
    return out + table(["document", "bound, s", "stopped after, s"], rows)


def formats(r: Result) -> list[str]:
    out = para(
        "Every office, web and scanned corpus file through the pipeline's extraction against the",
        "format's library called directly (for OCR: one English Tesseract pass over the rendered",
        "page), in seconds per page, and the share of known phrases found verbatim in the text.",
    )
    rows = [
        [
            name,
            num(f["files"]),
            num(f["pages"]),
            num(f["pipeline_s_per_page"], 3),
            num(f["floor_s_per_page"], 3),
            pct(f["phrases_found"]),
        ]
        for name, f in sorted(r["formats"].items())
    ]
    out += table(["format", "files", "pages", "s / page", "floor s / page", "phrases found"], rows)
    out += para(
        f"OCR'd pages passing the readability check: {pct(r['ocr_readable_share_of_pages'])}.",
        "Scanned pages are rendered at 300 dpi:",
    )
    dpi = r.get("render_dpi", {})
    rows = [
        [f"{k} dpi", num(v["mean_confidence"], 1), num(v["seconds_per_page"], 2)]
        for k, v in dpi.items()
    ]
    return out + (table(["rendering", "mean confidence", "s / page"], rows) if rows else [])


def upload(r: Result) -> list[str]:
    out = para(
        f"1 MB PDFs uploaded by {r['clients']} concurrent clients, against a bare ASGI app that",
        "only reads the body, in milliseconds.",
    )
    rows = [
        [label, num(r[key]["p50_ms"], 1), num(r[key]["p99_ms"], 1)]
        for key, label in (("api", "API"), ("floor", "floor"))
    ]
    return out + table(["", "p50", "p99"], rows)


def search(r: Result) -> list[str]:
    lat = r["latency"]
    out = para(
        f"`/search` at {num(r['chunks'])} chunks, k = {r['k']}, {r['queries']} SQuAD questions",
        "over HTTP against one API process, in milliseconds. Goal: hybrid p99 ≤",
        f"{num(r['goal_p99_ms'], 0)} ms for one client.",
    )
    rows = [["floor: embed + Chroma in process", *_p50_p99(lat["floor"]), ""]]
    for mode in ("dense", "lexical", "hybrid"):
        four = lat.get(f"{mode}_4_clients", {})
        rows.append([mode, *_p50_p99(lat[mode]), num(four.get("p99_ms"), 1)])
    return out + table(["", "p50", "p99", "p99, 4 clients"], rows)


def _p50_p99(d: Result) -> list[str]:
    return [num(d["p50_ms"], 1), num(d["p99_ms"], 1)]


def filtered(r: Result) -> list[str]:
    lat = r["latency"]
    out = para(
        f"`/search` over {num(r['chunks'])} chunks in {r['collections']} collections, with",
        "metadata filters, p50 / p99 in milliseconds. Goal: filtered p99 ≤",
        f"{num(r['goal_p99_ms'], 0)} ms for one client. The floor (embed, ask one collection's",
        f"index, in process) is {pair(lat['floor']['p50_ms'], lat['floor']['p99_ms'])}.",
    )
    kinds = ["unfiltered", "filtered", "selective", "all_filtered"]
    head = [
        "mode",
        "one collection",
        "filtered (half)",
        "selective (5%)",
        "all collections, filtered",
    ]
    rows = [
        [mode] + [pair(lat[f"{mode}/{k}"]["p50_ms"], lat[f"{mode}/{k}"]["p99_ms"]) for k in kinds]
        for mode in ("dense", "lexical", "hybrid")
    ]
    return out + table(head, rows)


def status(r: Result) -> list[str]:
    columns = {
        "list_start": "page, first",
        "list_middle": "page, middle",
        "list_end": "page, last",
        "one": "one document",
        "failed": "`status=failed`",
        "filtered_third_end": "filter: a third, last page",
        "filtered_one_in_25_end": "filter: 1 in 25, last page",
    }
    goals = r["goals"]["p99_ms"]
    out = para(
        "Status reads over HTTP against one API process, 200 requests each, p50 / p99 in",
        f"milliseconds. Goals: p99 ≤ {num(goals['list'], 0)} for a page of 100, ≤",
        f"{num(goals['one'], 0)} for one document; the progress stream's delay ≤",
        f"{num(r['goals']['sse_delay_s'], 0)} s.",
    ) + measured(r)
    rows = [
        [num(size["documents"])]
        + [pair(size[k]["p50_ms"], size[k]["p99_ms"]) for k in columns]
        + [f"{num(size['sse_delay']['p50_s'], 2)} s"]
        for size in r["sizes"]
    ]
    return out + table(["documents", *columns.values(), "SSE delay"], rows)
