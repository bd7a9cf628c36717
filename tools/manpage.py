#!/usr/bin/env python3
"""Man pages for marina and marina-agent, from the command line's own description.

    tools/manpage.py --marina .build/release/marina --out DIR

runs `marina --experimental-dump-help` (swift-argument-parser's ToolInfo JSON: every command,
its abstract, discussion and arguments) and `marina --version`, and writes DIR/marina.1 (every
subcommand a section of its own, in the order of `marina --help`) and DIR/marina-agent.1 (the
lean agent, described by the `agent` subcommand, which runs the same code). Deterministic: the
same binary gives the same bytes (the date is SOURCE_DATE_EPOCH's when set, else none), and it
takes a fraction of a second. `--json FILE` reads a saved dump instead of running the binary
(the version is then `--version`'s argument).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys


def roff(text):
    """Text escaped for roff: backslashes, a leading dot or quote, hyphens of options;
    `code` set in bold."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"`([^`\n]+)`", lambda m: "\\fB" + m.group(1) + "\\fR", text)
    text = re.sub(r"(?<![\w])-(?=[-\w])", r"\\-", text)
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def paragraphs(text):
    """Blank-line separated paragraphs, each as roff, separated by .PP."""
    if not text:
        return []
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if out:
            out.append(".PP")
        out.append(roff(block.strip()))
    return out


def visible_arguments(command, root):
    """The arguments a person is shown: no hidden ones, and --help/--version only at the top."""
    shown = []
    for argument in command.get("arguments") or []:
        if not argument.get("shouldDisplay", True):
            continue
        name = (argument.get("preferredName") or {}).get("name")
        if not root and name in ("help", "version"):
            continue
        shown.append(argument)
    return shown


def flag_name(name):
    kind = name["kind"]
    return ("--" if kind == "long" else "-") + name["name"]


def synopsis_term(argument):
    """One argument as the synopsis shows it: [--option <value>], <positional> ..."""
    kind = argument["kind"]
    value = argument.get("valueName") or "value"
    if kind == "positional":
        term = "\\fI<" + roff(value) + ">\\fR"
    else:
        name = argument.get("preferredName") or (argument.get("names") or [{"kind": "long", "name": value}])[0]
        term = "\\fB" + roff(flag_name(name)) + "\\fR"
        if kind == "option":
            term += " \\fI<" + roff(value) + ">\\fR"
    if argument.get("isRepeating"):
        term += " ..."
    if argument.get("isOptional"):
        term = "[" + term + "]"
    return term


def argument_entry(argument):
    """A .TP entry: every name of the argument, then its help."""
    value = argument.get("valueName") or "value"
    if argument["kind"] == "positional":
        head = "\\fI<" + roff(value) + ">\\fR"
    else:
        names = ", ".join("\\fB" + roff(flag_name(n)) + "\\fR" for n in argument.get("names") or [])
        head = names + (" \\fI<" + roff(value) + ">\\fR" if argument["kind"] == "option" else "")
    body = []
    if argument.get("abstract"):
        body.append(roff(argument["abstract"]))
    values = argument.get("allValues") or []
    if values and argument["kind"] != "flag":
        body.append("Values: " + ", ".join(roff(v) for v in values) + ".")
    if argument.get("defaultValue") not in (None, ""):
        body.append("Default: " + roff(argument["defaultValue"]) + ".")
    if argument.get("discussion"):
        body.append(roff(argument["discussion"]))
    return [".TP", head] + (body or [""])


def command_lines(command, path, root=False):
    """The section of one command (`.SS marina switchover`), then those of its subcommands."""
    out = []
    subcommands = [c for c in command.get("subcommands") or [] if c.get("shouldDisplay", True) and c["commandName"] != "help"]
    arguments = visible_arguments(command, root)
    if not root:
        out += [".SS " + '"' + roff(" ".join(path)) + '"']
        usage = "\\fB" + roff(" ".join(path)) + "\\fR"
        if subcommands and not arguments:
            usage += " \\fI<subcommand>\\fR"
        terms = [synopsis_term(a) for a in arguments]
        out += [".PP", usage + (" " + " ".join(terms) if terms else "")]
        if command.get("aliases"):
            out += [".PP", "Aliases: " + ", ".join(roff(a) for a in command["aliases"]) + "."]
        if command.get("abstract"):
            out += [".PP", roff(command["abstract"])]
        if command.get("discussion"):
            out += [".PP"] + paragraphs(command["discussion"])
        if subcommands:
            default = command.get("defaultSubcommand")
            names = ", ".join("\\fB" + roff(c["commandName"]) + "\\fR" for c in subcommands)
            out += [".PP", "Subcommands: " + names + (" (default: \\fB" + roff(default) + "\\fR)." if default else ".")]
        if arguments:
            out += [".PP", "Options:", ".RS"]
            for argument in arguments:
                out += argument_entry(argument)
            out += [".RE"]
    for sub in subcommands:
        out += command_lines(sub, path + [sub["commandName"]])
    return out


def header(name, version, date, title):
    return [
        '.\\" Generated by tools/manpage.py from `marina --experimental-dump-help`; do not edit.',
        '.TH "%s" "1" "%s" "%s" "%s"' % (name.upper(), date, roff(version), title),
    ]


def marina_page(tool, version, date):
    root = tool["command"]
    subcommands = [c for c in root.get("subcommands") or [] if c.get("shouldDisplay", True) and c["commandName"] != "help"]
    out = header("marina", version, date, "Marina Manual")
    out += [".SH NAME", "marina \\- " + roff(root.get("abstract") or "")]
    out += [".SH SYNOPSIS", ".nf", "\\fBmarina\\fR \\fI<subcommand>\\fR [\\fIoptions\\fR]", "\\fBmarina\\fR \\fB\\-\\-help\\fR", ".fi"]
    out += [".SH DESCRIPTION"]
    out += paragraphs(root.get("discussion")) or [roff(root.get("abstract") or "")]
    out += [
        ".PP",
        "Every subcommand is described below, in the order of \\fBmarina \\-\\-help\\fR; "
        "\\fBmarina help\\fR \\fIsubcommand\\fR prints the same text.",
        ".PP",
        "Subcommands: " + ", ".join("\\fB" + roff(c["commandName"]) + "\\fR" for c in subcommands) + ".",
    ]
    arguments = visible_arguments(root, True)
    if arguments:
        out += [".SH OPTIONS"]
        for argument in arguments:
            out += argument_entry(argument)
    out += [".SH COMMANDS"]
    out += command_lines(root, ["marina"], root=True)
    out += [
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBMARINA_LOG_LEVEL\\fR",
        "The level of the log lines on standard error: trace, debug, info, notice, warning (the default), error, critical.",
        ".TP",
        "\\fBMARINA_SANDBOX_DIR\\fR",
        "Use the etcd of the sandbox in this directory (as \\fB\\-\\-sandbox\\fR).",
        ".SH FILES",
        ".TP",
        "\\fI/etc/marina/controller.yaml\\fR",
        "The controller's configuration (\\fBmarina controller \\-\\-config\\fR), run by \\fBmarina\\-controller.service\\fR.",
        ".TP",
        "\\fI/etc/marina/agent.yaml\\fR",
        "The agent's configuration, run by \\fBmarina\\-agent.service\\fR (see \\fBmarina\\-agent\\fR(1)).",
        ".SH SEE ALSO",
        "\\fBmarina\\-agent\\fR(1), \\fBetcdctl\\fR(1), \\fBmariadb\\fR(1); docs/deployment.md and docs/cli.md in the source.",
    ]
    return "\n".join(out) + "\n"


def agent_page(tool, version, date):
    agent = next((c for c in tool["command"].get("subcommands") or [] if c["commandName"] == "agent"), {})
    out = header("marina-agent", version, date, "Marina Manual")
    out += [".SH NAME", "marina\\-agent \\- " + roff(agent.get("abstract") or "the Marina agent")]
    out += [".SH SYNOPSIS", ".nf", "\\fBmarina\\-agent\\fR \\fB\\-\\-config\\fR \\fI<file>\\fR", ".fi"]
    out += [".SH DESCRIPTION"]
    out += [
        "The lean agent for database hosts: the same code as \\fBmarina agent\\fR, built without the command line "
        "library or full Foundation. It probes every \\fBmariadbd\\fR its configuration names each interval and "
        "publishes what it sees to etcd under a lease; it stops gracefully on SIGTERM or SIGINT, withdrawing its "
        "observations.",
    ]
    if agent.get("discussion"):
        out += [".PP"] + paragraphs(agent["discussion"])
    out += [
        ".PP",
        "It refuses to run as root unless the configuration says \\fBallow_root: true\\fR; "
        "\\fBmarina\\-agent.service\\fR runs it as the \\fBmarina\\fR user.",
        ".SH OPTIONS",
        ".TP",
        "\\fB\\-\\-config\\fR \\fI<file>\\fR",
        "The agent's YAML configuration (sample: agent.example.yaml; every key is documented in docs/agent.md).",
        ".TP",
        "\\fB\\-h\\fR, \\fB\\-\\-help\\fR",
        "Print the usage line.",
        ".SH EXIT STATUS",
        "0 after a graceful stop; 1 when the configuration or a file it names cannot be used, or the agent runs as "
        "root without \\fBallow_root\\fR (one line on standard error says why); 64 on a usage error.",
        ".SH FILES",
        ".TP",
        "\\fI/etc/marina/agent.yaml\\fR",
        "The configuration \\fBmarina\\-agent.service\\fR passes.",
        ".SH SEE ALSO",
        "\\fBmarina\\fR(1); docs/agent.md and docs/deployment.md in the source.",
    ]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description="Write marina.1 and marina-agent.1.")
    parser.add_argument("--marina", help="the marina binary to describe")
    parser.add_argument("--json", help="a saved `marina --experimental-dump-help` instead of running the binary")
    parser.add_argument("--version", help="the version for the pages' footers (default: `marina --version`)")
    parser.add_argument("--out", required=True, help="the directory to write into (created if missing)")
    options = parser.parse_args()
    if bool(options.marina) == bool(options.json):
        parser.error("give --marina BINARY or --json FILE")
    if options.json:
        with open(options.json, encoding="utf-8") as source:
            tool = json.load(source)
    else:
        dump = subprocess.run([options.marina, "--experimental-dump-help"], capture_output=True, check=True)
        tool = json.loads(dump.stdout)
    version = options.version
    if version is None and options.marina:
        version = subprocess.run([options.marina, "--version"], capture_output=True, check=True, text=True).stdout.strip()
    version = "marina " + (version or "")
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d") if epoch else ""
    if tool.get("serializationVersion") != 0:
        sys.exit("tools/manpage.py: unknown dump-help serialization version %r" % tool.get("serializationVersion"))
    os.makedirs(options.out, exist_ok=True)
    for name, text in (("marina.1", marina_page(tool, version, date)), ("marina-agent.1", agent_page(tool, version, date))):
        with open(os.path.join(options.out, name), "w", encoding="utf-8") as page:
            page.write(text)


if __name__ == "__main__":
    main()
