# Marina: `make demo` and `make test` work on a fresh Debian machine with Swift 6.
# Each installs the Debian packages it needs when they are missing.

DEBIAN_PACKAGES := mariadb-server mariadb-client etcd-server etcd-client percona-toolkit \
                   libmariadb-dev libcurl4-openssl-dev pkg-config openssl curl nftables iproute2 \
                   chromium python3-prometheus-client python3-jsonschema python3-yaml systemd groff-base
SWIFT           ?= swift
SANDBOX_DIR     ?= .sandbox
SUDO            := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MARINA          := .build/debug/marina

.PHONY: deps build agent demo demo-down test format lint bench bench-switchover bench-failover bench-partition bench-depool bench-grant-sync bench-api clean

## deps: install the Debian packages that are missing (servers, client libraries)
deps:
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 is not on PATH: install it from swift.org (it is not a Debian package)"; exit 1; }
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

## build: compile marina (debug)
build: deps
	$(SWIFT) build --product marina

## agent: build the lean agent for database hosts (release): .build/release/marina-agent
agent: deps
	$(SWIFT) build -c release --product marina-agent

## demo: start a sandbox (etcd, section s1: a primary and two replicas, an agent, a controller), show it, switch over and back, then kill the primary and watch the failover
demo: build
	$(MARINA) sandbox up --dir $(SANDBOX_DIR) --failover automatic --agent-interval 0.2
	@echo
	@echo "The committed source of truth in the sandbox's etcd:"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) section list
	@echo
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) instance list
	@echo
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) config history
	@echo
	@echo "What the sandbox's agent observes (marina status, from etcd):"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) status
	@echo
	@echo "A switchover of s1 to db1002, each step as the controller journals it, then back:"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) switchover s1 --to db1002 --reason "demo" --yes
	@echo
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) switchover s1 --to db1001 --reason "demo, back" --yes
	@echo
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation list --limit 2
	@echo
	@echo "Which controller leads and for how long, the section locks (none while nothing runs), and where this CLI's"
	@echo "settings come from (/etc/marina/marina.yaml, ~/.config/marina/marina.yaml, MARINA_CONFIG, the environment, flags):"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) controller status
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) lock list
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) config check
	@echo "Every command exits by one table ('$(MARINA) help exit-codes'; 7 = etcd lost while following: '$(MARINA) operation follow ID')."
	@echo
	@echo "HTTP: the controller serves the same JSON as the CLI's --json, Prometheus metrics and a web page; each agent"
	@echo "answers load balancers' health checks (/primary: 200 only on the writable, leased, configured primary):"
	@base=$$(python3 -c 'import json; s = json.load(open("$(SANDBOX_DIR)/sandbox.json")); print("http://127.0.0.1:%d" % s["http"]["controllerPort"])'); \
	  echo "  web page: $$base/   (actions need the token in $(SANDBOX_DIR)/api-token)"; \
	  echo "  curl $$base/api/v1/controller"; curl -s $$base/api/v1/controller; \
	  echo "  curl -s $$base/metrics | grep marina_write_window_seconds_count"; curl -s $$base/metrics | grep '^marina_write_window_seconds_count' || true
	@python3 -c 'import json; s = json.load(open("$(SANDBOX_DIR)/sandbox.json")); [print(n, p) for n, p in sorted(s["http"]["healthPorts"].items())]' | \
	  while read name port; do \
	    printf '  %s  GET /primary → %s   GET /replica?lag=5 → %s\n' $$name \
	      $$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$$port/primary) $$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$$port/replica?lag=5"); \
	  done
	@echo
	@echo "Automatic failover: db1001, the primary, killed with SIGKILL; the controller sees it dead on two witnesses"
	@echo "(its own connection refused, the replicas' IO threads disconnected) and promotes the replica that received the most:"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) sandbox kill db1001
	@for i in $$(seq 1 100); do \
	  MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation list --limit 1 | grep -q "failover.*done" && break; sleep 0.1; \
	done
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation show $$(MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation list --limit 1 | awk 'NR==2 {print $$1}')
	@echo
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) status
	@echo
	@echo "db1001 is depooled and marked to rejoin. Restarted, it becomes a replica of the new primary, since it holds"
	@echo "nothing beyond the fork point (it stays depooled until a DBA pools it):"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) sandbox restart db1001
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) instance rejoin db1001 --yes
	@echo "A DBA pools it again:"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) instance pool db1001 --section s1
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) config commit --yes -m "demo: db1001 rejoined, back in the pool"
	@echo
	@echo "Grant sync: an application account and a role, staged, committed, then applied to every instance (replicas"
	@echo "first, without the binary log, read back; any failure restores every instance). Only its hash reaches etcd:"
	@printf 'demo-password\n' > $(SANDBOX_DIR)/demo.password
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant role create s1 wikireader
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant set s1 wikireader --on 'wiki.*' SELECT
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant user s1 wikiuser --host '10.64.%' --host '127.0.0.1' --password-file $(SANDBOX_DIR)/demo.password
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant set s1 wikiuser --on 'wiki.*' INSERT UPDATE
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant role grant s1 wikireader --to wikiuser --default
	-MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant diff
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) config commit --yes -m "demo: wikiuser and its role"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) grant sync s1 --yes
	@echo "Variable sync: long_query_time everywhere, SET GLOBAL now, and in each agent's option file for restarts:"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) variable set s1 long_query_time 2
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) config commit --yes -m "demo: slow log at 2 s"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) variable sync s1 --yes
	@echo
	@echo "Self-fencing: the agent holds the primary lease of s1 in etcd. Frozen with SIGSTOP (here one agent watches"
	@echo "every instance), it renews nothing: the lease expires with the agent silent while the primary still answers,"
	@echo "so the controller fences that primary over SQL itself (read_only, sessions killed), then fails over (after"
	@echo "'failover ack', since the last automatic failover blocks the next):"
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) failover ack s1
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) sandbox agent db1001 --signal STOP
	@for i in $$(seq 1 300); do \
	  [ $$(MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation list | grep -c "failover.*done") -ge 2 ] && break; sleep 0.1; \
	done
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation show $$(MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) operation list --limit 1 | awk 'NR==2 {print $$1}')
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) sandbox agent db1001 --signal CONT
	@sleep 3
	@echo "Thawed, the agent finds its lease gone and another primary committed: the old primary stays read-only."
	MARINA_SANDBOX_DIR=$(SANDBOX_DIR) $(MARINA) status
	@echo
	@echo "Another automatic failover of s1 waits for '$(MARINA) failover ack s1'. Real partitions (a network"
	@echo "namespace per host, as root): '$(MARINA) sandbox up --hosts namespaces', then '$(MARINA) sandbox partition NAME'."
	@echo
	@echo "The sandbox keeps running. marina uses its etcd when told to: 'export MARINA_SANDBOX_DIR=$(SANDBOX_DIR)'"
	@echo "(or pass '--sandbox $(SANDBOX_DIR)' to each command). Then try '$(MARINA) switchover s1 --to db1003 --dry-run'"
	@echo "for the plan with its SQL, '$(MARINA) sandbox load --seconds 20' in one shell and switchovers in another, or"
	@echo "'$(MARINA) instance depool db1002 --section s1', then '$(MARINA) config diff' and '$(MARINA) config commit --yes -m why';"
	@echo "'$(MARINA) sandbox status' shows the servers and the URLs; 'make demo-down' stops it."
	@python3 -c 'import json; s = json.load(open("$(SANDBOX_DIR)/sandbox.json")); print("The topology page: http://127.0.0.1:%d/  (the API under /api/v1, docs/http-api.md; metrics at /metrics)" % s["http"]["controllerPort"])'

## demo-down: stop the demo sandbox
demo-down:
	$(MARINA) sandbox down --dir $(SANDBOX_DIR)

## test: check the formatting, then run every test (pure, and integration tests against real mariadbd, etcd and pt-heartbeat)
test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest

## lint: the tree is formatted as .swift-format says (swift-format ships with the toolchain)
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

## format: format the tree in place
format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift

## bench: measure the figures recorded in docs/benchmarks.md (about 10 minutes)
bench: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	$(SWIFT) build -c release --product marina-agent
	.build/release/MarinaBenchmarks sandbox-up --runs 20
	.build/release/MarinaBenchmarks agent --marina .build/release/marina-agent --seconds 60
	.build/release/MarinaBenchmarks config-commit --runs 20 --marina .build/release/marina
	.build/release/MarinaBenchmarks drift --runs 20
	.build/release/MarinaBenchmarks switchover --runs 30 --marina .build/release/marina
	.build/release/MarinaBenchmarks failover --runs 20 --silent 5 --marina .build/release/marina
	.build/release/MarinaBenchmarks depool --runs 25 --marina .build/release/marina
	.build/release/MarinaBenchmarks grant-sync --runs 10 --marina .build/release/marina
	.build/release/MarinaBenchmarks api --runs 200

## bench-api: latency of the controller's HTTP API (status, drift, metrics) on 500 instances (under a minute)
bench-api: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	.build/release/MarinaBenchmarks api --runs 200

## bench-switchover: the switchover figures alone (under a minute)
bench-switchover: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	.build/release/MarinaBenchmarks switchover --runs 30 --marina .build/release/marina

## bench-failover: the failover figures alone (about 5 minutes: a fresh sandbox per kill)
bench-failover: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	.build/release/MarinaBenchmarks failover --runs 20 --silent 5 --marina .build/release/marina

## bench-partition: the primary's host cut off, 10 times (about 5 minutes; root, for the namespaces)
bench-partition: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	.build/release/MarinaBenchmarks partition --runs 10 --marina .build/release/marina

clean:
	-$(MARINA) sandbox down --dir $(SANDBOX_DIR) --purge
	rm -rf .build

## bench-grant-sync: grant sync of 50 managed users on 5 instances (about a minute)
bench-grant-sync: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	.build/release/MarinaBenchmarks grant-sync --runs 10 --marina .build/release/marina

## bench-depool: the automatic depool delay alone (about 2 minutes)
bench-depool: deps
	$(SWIFT) build -c release --product MarinaBenchmarks
	$(SWIFT) build -c release --product marina
	.build/release/MarinaBenchmarks depool --runs 25 --marina .build/release/marina

## install: build the release binaries, then install them with the systemd units, the sysusers file, man pages, shell completions and examples (PREFIX=/usr/local; DESTDIR to stage; CONFIGURATION=debug installs the existing debug build without building)
# Installs under $(DESTDIR)$(PREFIX) only, never /etc: the sample configurations go to
# $(DOCDIR)/examples, to be copied into /etc/marina by hand (docs/deployment.md). Units go to
# $(PREFIX)/lib/systemd/system (/usr/lib/... for PREFIX=/usr; /usr/local/lib/systemd/system is on
# systemd's search path too), with ExecStart naming $(BINDIR). Needs no Debian package beyond
# Swift and python3 (for the man pages), so it does not run `make deps`.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/marina
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
# Debian's zsh reads /usr/share/zsh/vendor-completions and /usr/local/share/zsh/site-functions.
ZSHCOMPDIR     ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
FISHCOMPDIR    ?= $(PREFIX)/share/fish/vendor_completions.d
CONFIGURATION  ?= release
INSTALL        ?= install
BUILT          := .build/$(CONFIGURATION)
INSTALLED      := $(BINDIR)/marina $(BINDIR)/marina-agent $(SYSTEMDUNITDIR)/marina-agent.service \
                  $(SYSTEMDUNITDIR)/marina-controller.service $(SYSUSERSDIR)/marina.conf $(MANDIR)/man1/marina.1 \
                  $(MANDIR)/man1/marina-agent.1 $(BASHCOMPDIR)/marina $(ZSHCOMPDIR)/_marina $(FISHCOMPDIR)/marina.fish

.PHONY: install uninstall install-binaries

install-binaries:
	@case "$(CONFIGURATION)" in \
	  release) $(SWIFT) build -c release --product marina && $(SWIFT) build -c release --product marina-agent ;; \
	  debug) [ -x $(BUILT)/marina ] && [ -x $(BUILT)/marina-agent ] || { echo "CONFIGURATION=debug installs the debug build, and there is none: run swift build first"; exit 1; } ;; \
	  *) echo "CONFIGURATION must be release or debug (got $(CONFIGURATION))"; exit 1 ;; \
	esac

install: install-binaries
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(DOCDIR)/examples/playbooks $(DESTDIR)$(DOCDIR)/sql
	$(INSTALL) -m 755 $(BUILT)/marina $(BUILT)/marina-agent $(DESTDIR)$(BINDIR)/
	for unit in marina-agent marina-controller; do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' config/$$unit.service.in \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit.service && chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit.service || exit 1; \
	done
	$(INSTALL) -m 644 config/marina.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/marina.conf
	python3 tools/manpage.py --marina $(BUILT)/marina --out $(DESTDIR)$(MANDIR)/man1
	$(BUILT)/marina --generate-completion-script bash > $(DESTDIR)$(BASHCOMPDIR)/marina
	$(BUILT)/marina --generate-completion-script zsh > $(DESTDIR)$(ZSHCOMPDIR)/_marina
	$(BUILT)/marina --generate-completion-script fish > $(DESTDIR)$(FISHCOMPDIR)/marina.fish
	$(INSTALL) -m 644 config/agent.example.yaml config/controller.example.yaml config/topology.example.yaml config/marina.example.yaml \
	  config/haproxy.example.cfg config/prometheus-alerts.example.yml $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 644 playbooks/*.yaml $(DESTDIR)$(DOCDIR)/examples/playbooks/
	$(INSTALL) -m 644 sql/*.sql $(DESTDIR)$(DOCDIR)/sql/
	$(INSTALL) -m 644 docs/deployment.md docs/agent.md docs/cli.md docs/cli-configuration.md $(DESTDIR)$(DOCDIR)/
	@echo "Installed under $(DESTDIR)$(PREFIX). Next: systemd-sysusers, the configurations in $(SYSCONFDIR)/marina (docs/deployment.md), then systemctl daemon-reload."

## uninstall: remove what install installed (never anything in /etc)
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rm -rf $(DESTDIR)$(DOCDIR)
