#!/bin/sh
# The etcd roles of docs/deployment.md ("etcd users and roles"), created with etcdctl:
#
#   tools/etcd-roles.sh shared
#       marina-controller  readwrite on the whole key root (it journals, locks, commits, leads)
#       marina-dba         readwrite on the whole key root (the marina command line of DBAs)
#       marina-readonly    read on the whole key root (marina status/drift/operation for
#                          dashboards and on-call; note that it reads grants/ and history/,
#                          which hold the managed accounts' password hashes)
#   tools/etcd-roles.sh agent ROLE INSTANCE[=SECTION] ...
#       one host's agent: read what an agent reads (committed, generated/, committed-variables/,
#       synced-variables/, locks/, operations/, observed/, fencing/lease/); write only its own
#       instances' observed/<instance> and the primary leases fencing/lease/<section> of their
#       sections (SECTION is the instance's shard in the agent's configuration).
#
# Users are not created here (their passwords are yours):
#   etcdctl user add marina-agent-db1001 --interactive=false < password-file
#   etcdctl user grant-role marina-agent-db1001 marina-agent-db1001
#
# etcdctl reaches etcd as its environment says (ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT,
# ETCDCTL_KEY, and ETCDCTL_USER=root:PASSWORD once auth is enabled). MARINA_ETCD_ROOT is the key
# root (etcd.root in the configurations; default /marina/v1). Running it again is harmless:
# existing roles are kept and their permissions granted again.
set -eu

ROOT=${MARINA_ETCD_ROOT:-/marina/v1}
ETCDCTL=${ETCDCTL:-etcdctl}
export ETCDCTL_API=3

usage() {
    echo "usage: $0 shared | agent ROLE INSTANCE[=SECTION] ..." >&2
    exit 64
}

role() {
    $ETCDCTL role get "$1" >/dev/null 2>&1 || $ETCDCTL role add "$1" >/dev/null
}

# grant ROLE read|readwrite KEY [prefix]
grant() {
    if [ "${4:-}" = prefix ]; then
        $ETCDCTL role grant-permission --prefix=true "$1" "$2" "$3" >/dev/null
    else
        $ETCDCTL role grant-permission "$1" "$2" "$3" >/dev/null
    fi
}

[ $# -ge 1 ] || usage
case "$1" in
shared)
    [ $# -eq 1 ] || usage
    role marina-controller
    grant marina-controller readwrite "$ROOT/" prefix
    role marina-dba
    grant marina-dba readwrite "$ROOT/" prefix
    role marina-readonly
    grant marina-readonly read "$ROOT/" prefix
    echo "roles marina-controller, marina-dba, marina-readonly: ready"
    ;;
agent)
    [ $# -ge 3 ] || usage
    name=$2
    shift 2
    role "$name"
    grant "$name" read "$ROOT/committed"
    for prefix in generated/ committed-variables/ synced-variables/ locks/ operations/ observed/ fencing/lease/; do
        grant "$name" read "$ROOT/$prefix" prefix
    done
    for pair in "$@"; do
        instance=${pair%%=*}
        [ -n "$instance" ] || usage
        grant "$name" readwrite "$ROOT/observed/$instance"
        if [ "$instance" != "$pair" ]; then
            grant "$name" readwrite "$ROOT/fencing/lease/${pair#*=}"
        fi
    done
    echo "role $name: ready"
    ;;
*)
    usage
    ;;
esac
