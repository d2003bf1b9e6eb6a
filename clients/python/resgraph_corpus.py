#!/usr/bin/env python3
"""Run a corpus of prompts on a resgraph cluster and print the circuit they share.

Submits the prompts to the orchestrator as one corpus (a job each, sharing the cluster), follows
it to the end, then asks the graph service for the corpus circuit: the edges nonzero in at least --min-share of the prompts, with their mean,
variance, min and max (METHOD.md "Across prompts"), and the latents active in most prompts.
Run generate.sh first; the cluster is the one `./resgraph up` started, or --orchestrator/--graph.
"""
import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompts", type=Path, help="a file with one prompt a line")
    p.add_argument("--cluster", type=Path, default=HERE.parent.parent / ".resgraph",
                   help="the folder of the local cluster `./resgraph up` started (default: .resgraph)")
    p.add_argument("--orchestrator", help="HOST:PORT of the orchestrator (default: from the cluster's cluster.json)")
    p.add_argument("--graph", help="HOST:PORT of the graph service (default: from the cluster's cluster.json)")
    p.add_argument("--credentials", type=Path,
                   help="the folder with the cluster's ca.crt and token (default: $RESGRAPH_CREDENTIALS, else the cluster's credentials/)")
    p.add_argument("--model", help="the model (default: the one the cluster's model server loaded)")
    p.add_argument("--saes", help="the SAEs (default: the ones the cluster's model server loaded)")
    p.add_argument("--min-share", type=float, default=0.5, help="the corpus circuit's edges recur in this share of prompts")
    p.add_argument("--stubs", type=Path, default=HERE / "gen", help="where generate.sh wrote the Python modules")
    p.add_argument("--json", action="store_true", help="print the jobs and the corpus as JSON instead of a table")
    return p.parse_args()


def endpoints(args):
    """The orchestrator, graph service, model and SAEs: from the flags, else from cluster.json."""
    state = {}
    if not (args.orchestrator and args.graph and args.model and args.saes):
        path = args.cluster / "cluster.json"
        if not path.exists():
            sys.exit(f"resgraph_corpus: no {path}: start a cluster with ./resgraph up, or give --orchestrator, --graph, "
                     "--model and --saes")
        state = json.loads(path.read_text())
    e = state.get("endpoints", {})
    return (args.orchestrator or e["orchestrator"], args.graph or e["graphService"],
            args.model or state["model"], args.saes or state["saes"])


def secure_channel(grpc, address, folder):
    """TLS trusting the cluster's ca.crt, every call with its bearer token, as every resgraph server asks."""
    try:
        ca, token = (folder / "ca.crt").read_bytes(), (folder / "token").read_text().strip()
    except OSError as e:
        sys.exit(f"resgraph_corpus: cannot read the cluster's credentials: {e}; give --credentials DIR")
    credentials = grpc.composite_channel_credentials(grpc.ssl_channel_credentials(root_certificates=ca),
                                                     grpc.access_token_call_credentials(token))
    return grpc.secure_channel(address, credentials)


def main():
    args = parse_args()
    sys.path.insert(0, str(args.stubs))
    try:
        import grpc
        from google.protobuf import json_format
        from resgraph.v1 import graph_pb2, graph_pb2_grpc, jobs_pb2, jobs_pb2_grpc, model_pb2
    except ImportError as e:
        sys.exit(f"resgraph_corpus: {e}: run generate.sh, and install python3-grpcio and python3-protobuf")

    prompts = [line for line in args.prompts.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        sys.exit(f"resgraph_corpus: {args.prompts} has no prompts")
    orchestrator, graph_address, model, saes = endpoints(args)
    folder = args.credentials or Path(os.environ.get("RESGRAPH_CREDENTIALS") or args.cluster / "credentials")
    jobs = jobs_pb2_grpc.JobServiceStub(secure_channel(grpc, orchestrator, folder))
    graph = graph_pb2_grpc.GraphServiceStub(secure_channel(grpc, graph_address, folder))

    try:
        spec = jobs_pb2.CorpusSpec(job=jobs_pb2.JobSpec(ref=model_pb2.ModelRef(model=model, saes=saes)),
                                   prompts=[jobs_pb2.CorpusPrompt(prompt=text) for text in prompts])
        corpus_job = follow(jobs, jobs_pb2, jobs.SubmitCorpus(spec).id)
        done = [m.job_id for m in corpus_job.members if m.phase == jobs_pb2.PHASE_DONE]
        for m in corpus_job.members:
            if m.phase != jobs_pb2.PHASE_DONE:
                print(f"resgraph_corpus: prompt {m.index + 1} (job {m.job_id}) {jobs_pb2.Phase.Name(m.phase)}: {m.error}",
                      file=sys.stderr)
        if not done:
            sys.exit("resgraph_corpus: no prompt finished, so there is no corpus")
        corpus = graph.GetCorpus(graph_pb2.GetCorpusRequest(job_ids=done, min_share=args.min_share))
    except grpc.RpcError as e:
        sys.exit(f"resgraph_corpus: {e.code().name}: {e.details()}")

    if args.json:
        print(json.dumps({"corpus_id": corpus_job.id, "jobs": done,
                          "corpus": json_format.MessageToDict(corpus, preserving_proto_field_name=True)}))
    else:
        print_table(corpus, args.min_share)
    return 0 if len(done) == len(prompts) else 1


def follow(jobs, jobs_pb2, corpus_id):
    """Watches the corpus until every prompt's job has ended, with one progress line on stderr; the corpus then."""
    for corpus_job in jobs.WatchCorpus(jobs_pb2.GetJobRequest(id=corpus_id)):
        p = corpus_job.progress
        eta = f"  ETA {p.eta_seconds:.0f} s" if p.HasField("eta_seconds") else ""
        print(f"\r{p.prompts_done + p.prompts_failed}/{p.prompts_total} prompts  {p.edges_written:,} edges  "
              f"{p.edges_per_second:,.0f} edges/s{eta}   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return corpus_job


def print_table(corpus, min_share):
    print(f"corpus of {corpus.jobs} prompts: {corpus.distinct_edges:,} distinct edges; "
          f"{len(corpus.edges)} in at least {min_share:.0%} of them")
    print("latents active in most prompts")
    for n in corpus.nodes[:15]:
        print(f"  {n.id:<14} {n.jobs:>4}/{corpus.jobs}  mean activation {n.mean_activation:.4f}")
    print("edges they share, strongest first")
    for e in corpus.edges[:15]:
        print(f"  {e.source:<14} -> {e.target:<14} {e.jobs:>4}/{corpus.jobs}  {e.mean:+.4f} ± {e.variance ** 0.5:.4f}")


if __name__ == "__main__":
    sys.exit(main())
