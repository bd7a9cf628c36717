import EtcdClient
import Testing

@Suite("etcd endpoints and timeouts are checked before a client is built")
struct ConfigurationValidationTests {
    @Test(
        "a list with no endpoint, or one that is not an http(s) URL with a host, is refused naming the setting",
        arguments: [
            ("", "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            (",", "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            (" , ,", "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            ("127.0.0.1:2379", "--etcd endpoint \"127.0.0.1:2379\" must start with http:// or https://"),
            ("http://a:2379,ftp://b", "--etcd endpoint \"ftp://b\" (endpoint 2) must start with http:// or https://"),
            ("https://", "--etcd endpoint \"https://\" must name a host, as in http://127.0.0.1:2379"),
            ("http://:2379", "--etcd endpoint \"http://:2379\" must name a host, as in http://127.0.0.1:2379"),
            ("http://a b:2379", "--etcd endpoint \"http://a b:2379\" must name a host, as in http://127.0.0.1:2379"),
        ])
    func refused(list: String, message: String) {
        #expect(throws: EtcdConfigurationError.self) { try EtcdConfiguration.endpoints(fromList: list, setting: "--etcd") }
        do {
            _ = try EtcdConfiguration.endpoints(fromList: list, setting: "--etcd")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test("blanks around endpoints are ignored")
    func accepted() throws {
        #expect(
            try EtcdConfiguration.endpoints(fromList: " http://a:2379 ,https://[::1]:2379,", setting: "--etcd")
                == ["http://a:2379", "https://[::1]:2379"])
        try EtcdConfiguration(endpoints: ["http://127.0.0.1:2379/"]).validate(setting: "etcd.endpoints")
    }

    @Test(
        "a configuration with no endpoint or a timeout that is not a positive finite number is refused",
        arguments: [
            (EtcdConfiguration(endpoints: []), "etcd.endpoints must list at least one URL (such as http://127.0.0.1:2379)"),
            (EtcdConfiguration(endpoints: [""]), "etcd.endpoints endpoint \"\" must start with http:// or https://"),
            (
                EtcdConfiguration(endpoints: ["http://a"], connectTimeout: .nan),
                "etcd.endpoints has an unusable connect timeout of nan seconds (must be above 0 and at most 3600)"
            ),
            (
                EtcdConfiguration(endpoints: ["http://a"], requestTimeout: .infinity),
                "etcd.endpoints has an unusable request timeout of inf seconds (must be above 0 and at most 3600)"
            ),
            (
                EtcdConfiguration(endpoints: ["http://a"], requestTimeout: -1),
                "etcd.endpoints has an unusable request timeout of -1.0 seconds (must be above 0 and at most 3600)"
            ),
        ])
    func invalidConfiguration(configuration: EtcdConfiguration, message: String) {
        #expect(throws: EtcdConfigurationError(setting: "etcd.endpoints", problem: String(message.dropFirst("etcd.endpoints ".count)))) {
            try configuration.validate(setting: "etcd.endpoints")
        }
    }
}
