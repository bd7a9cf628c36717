import Topology

/// A small valid topology: datacenter dc1, section s1 with db1001 (primary) and two pooled replicas.
func smallTopology() -> Topology {
    Topology(
        datacenters: ["dc1"],
        sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: 1)],
        instances: [
            "db1001": Instance(
                name: "db1001", host: "10.0.0.1", datacenter: "dc1", candidatePrimary: true,
                sections: ["s1": Membership(pooled: true, weight: 0)]),
            "db1002": Instance(
                name: "db1002", host: "10.0.0.2", datacenter: "dc1", candidatePrimary: true,
                sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db1003": Instance(
                name: "db1003", host: "10.0.0.3", datacenter: "dc1",
                sections: ["s1": Membership(pooled: true, weight: 200, groups: ["vslow": GroupMembership(weight: 50)])]),
        ])
}

/// The topology behind the example of dbctl's generated configuration for eqiad
/// (eqiad: DEFAULT = s3, s4 with groups, es6, x1, pc1 without replicas, s1 read-only).
func wikimediaExample() -> Topology {
    func instance(_ name: String, _ host: String, port: Int = 3306, _ sections: [String: Membership]) -> Instance {
        Instance(name: name, host: host, port: port, datacenter: "eqiad", sections: sections)
    }
    let pooled = { (weight: Int) in Membership(pooled: true, weight: weight) }
    let grouped = Membership(pooled: true, weight: 300, groups: ["dump": GroupMembership(weight: 100), "vslow": GroupMembership(weight: 100)])
    return Topology(
        datacenters: ["eqiad", "codfw"],
        sections: [
            "s1": Section(
                name: "s1", primary: "db1151", datacenter: "eqiad", readOnly: true,
                readOnlyReason: "Maintenance until 06:15 UTC - T372524"),
            "s3": Section(name: "s3", primary: "db1223", datacenter: "eqiad"),
            "s4": Section(name: "s4", primary: "db1160", datacenter: "eqiad"),
            "es6": Section(name: "es6", primary: "es1038", datacenter: "eqiad", flavor: .external),
            "x1": Section(name: "x1", primary: "db1237", datacenter: "eqiad", flavor: .external),
            "pc1": Section(name: "pc1", primary: "pc1011", datacenter: "eqiad", flavor: .external, omitReplicas: true),
        ],
        instances: [
            "db1151": instance("db1151", "10.64.0.6", ["s1": pooled(0)]),
            "dba2:3307": instance("dba2:3307", "127.0.0.1", port: 3307, ["s1": pooled(100)]),
            "db1223": instance("db1223", "10.64.0.10", ["s3": pooled(0)]),
            "db1166": instance("db1166", "10.64.0.11", ["s3": pooled(300)]),
            "db1189": instance("db1189", "10.64.0.12", ["s3": pooled(500)]),
            "db1160": instance("db1160", "10.64.0.20", ["s4": pooled(0)]),
            "db1248": instance("db1248", "10.64.0.21", ["s4": grouped]),
            "db1261": instance("db1261", "10.64.0.22", ["s4": pooled(500)]),
            "db1221": instance("db1221", "10.64.0.23", ["s4": grouped]),
            "es1038": instance("es1038", "10.64.0.30", ["es6": pooled(0)]),
            "es1036": instance("es1036", "10.64.0.31", ["es6": pooled(100)]),
            "es1037": instance("es1037", "10.64.0.32", ["es6": pooled(100)]),
            "db1237": instance("db1237", "10.64.0.40", ["x1": pooled(0)]),
            "db1220": instance("db1220", "10.64.0.41", ["x1": pooled(100)]),
            "pc1011": instance("pc1011", "10.64.0.50", ["pc1": pooled(1)]),
            "pc1012": instance("pc1012", "10.64.0.51", ["pc1": pooled(1)]),
        ])
}
