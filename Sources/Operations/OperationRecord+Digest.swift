import Crypto

/// The digest of what a DBA approves when shown a plan: the CLI sends it with the request
/// (`approved_plan`), and the controller refuses to run a plan whose digest differs (the
/// topology or the live state changed between the dry run and the request).
extension OperationRecord {
    /// SHA-256, in hex, over a canonical encoding of the plan: the kind, the section, the old
    /// primary, the candidate, the new source of a move, the skipped replicas, and every step's
    /// name, action, subject, hosts, statements, check, undo, timeout, point of no return,
    /// command and undo command, in order. Nothing else: not the id, the times, the states or
    /// the journal, so that the dry run and the request of the same plan give the same digest.
    public func planDigest() -> String {
        var plan = CanonicalEncoding()
        plan.append("marina-plan-1")
        plan.append(kind)
        plan.append(section)
        plan.append(oldPrimary)
        plan.append(candidate)
        plan.append(newSource)
        plan.append(skipReplicas)
        plan.append(secretsDigest)
        plan.append(steps.count)
        for step in steps {
            plan.append(step.name)
            plan.append(step.action.rawValue)
            plan.append(step.subject)
            plan.append(step.hosts)
            plan.append(step.statements)
            plan.append(step.check)
            plan.append(step.undo)
            plan.append(step.timeout.description)
            plan.append(step.pointOfNoReturn ? "point-of-no-return" : "undoable")
            plan.append(step.command)
            plan.append(step.undoCommand)
        }
        return SHA256.hash(data: plan.bytes).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// SHA-256 in hex of statements in order, per instance name: `secretsDigest` of a plan whose
    /// journaled statements are redacted.
    public static func secretsDigest(_ statements: [String: [String]]) -> String {
        var text = CanonicalEncoding()
        for (instance, list) in statements.sorted(by: { $0.key < $1.key }) {
            text.append(instance)
            text.append(list)
        }
        return SHA256.hash(data: text.bytes).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// The first 8 characters of a digest, as messages show it.
    public static func shortDigest(_ digest: String) -> String { String(digest.prefix(8)) }
}

/// An unambiguous byte encoding: every string is its length then its bytes, every list its
/// count then its items, an absent value a marker no present one can take.
struct CanonicalEncoding {
    private(set) var bytes = [UInt8]()

    mutating func append(_ text: String) {
        let utf8 = Array(text.utf8)
        bytes += Array("s\(utf8.count):".utf8) + utf8
    }

    mutating func append(_ text: String?) {
        guard let text else {
            bytes += Array("n;".utf8)
            return
        }
        append(text)
    }

    mutating func append(_ count: Int) { bytes += Array("c\(count);".utf8) }

    mutating func append(_ list: [String]) {
        append(list.count)
        for item in list { append(item) }
    }

    mutating func append(_ list: [String]?) {
        guard let list else {
            bytes += Array("n;".utf8)
            return
        }
        append(list)
    }
}
