import Topology

/// Where a grant applies, and what `ALL PRIVILEGES` means there in MariaDB 10.11: `SHOW GRANTS`
/// prints `ALL PRIVILEGES` exactly when an object holds every privilege of its level (routines
/// excepted: their two are always listed), and `GRANT OPTION` is never part of it.
enum PrivilegeLevel: Equatable {
    case global, database, table, routine

    init(object: String) {
        if object == "*.*" {
            self = .global
        } else if ["PROCEDURE ", "FUNCTION ", "PACKAGE "].contains(where: object.hasPrefix) {
            self = .routine
        } else if object.hasSuffix(".*") {
            self = .database
        } else {
            self = .table
        }
    }

    static let globalPrivileges = GrantNames.privileges.subtracting(["ALL PRIVILEGES", "GRANT OPTION"])
    static let databasePrivileges = GrantNames.databasePrivileges
    static let tablePrivileges = GrantNames.tablePrivileges
    static let routinePrivileges = GrantNames.routinePrivileges

    /// What `ALL PRIVILEGES` grants at this level.
    var all: Set<String> {
        switch self {
        case .global: return Self.globalPrivileges
        case .database: return Self.databasePrivileges
        case .table: return Self.tablePrivileges
        case .routine: return Self.routinePrivileges
        }
    }

    /// Privileges as single grants: `ALL PRIVILEGES` spelled out, `SELECT (A, B)` as
    /// `SELECT (A)` and `SELECT (B)`, `USAGE` dropped.
    func atoms(_ privileges: [String]) -> Set<String> {
        var atoms = Set<String>()
        for privilege in privileges {
            if privilege == "ALL PRIVILEGES" {
                atoms.formUnion(all)
            } else if let (base, columns) = Self.columns(of: privilege) {
                for column in columns { atoms.insert("\(base) (\(column))") }
            } else if privilege != "USAGE" {
                atoms.insert(privilege)
            }
        }
        return atoms
    }

    /// Single grants in canonical form: `ALL PRIVILEGES` for a full level (not for routines,
    /// as the server prints them), columns of one privilege together, sorted.
    func canonical(_ atoms: Set<String>) -> [String] {
        var rest = atoms
        var result = [String]()
        if self != .routine && all.isSubset(of: rest) {
            rest.subtract(all)
            result.append("ALL PRIVILEGES")
        }
        var columns = [String: [String]]()
        for atom in rest {
            if let (base, names) = Self.columns(of: atom) {
                columns[base, default: []] += names
            } else {
                result.append(atom)
            }
        }
        for (base, names) in columns { result.append("\(base) (\(Array(Set(names)).sorted().joined(separator: ", ")))") }
        return result.sorted()
    }

    /// `SELECT (A, B)` → (`SELECT`, [`A`, `B`]); nil for a privilege without columns.
    static func columns(of privilege: String) -> (String, [String])? {
        guard privilege.hasSuffix(")"), let open = privilege.firstIndex(of: "(") else { return nil }
        let base = String(privilege[..<open].dropLast(privilege[..<open].hasSuffix(" ") ? 1 : 0))
        let inner = privilege[privilege.index(after: open)..<privilege.index(before: privilege.endIndex)]
        let names = inner.split(separator: ",").map { String($0.drop { $0 == " " }) }
        return (base, names)
    }
}
