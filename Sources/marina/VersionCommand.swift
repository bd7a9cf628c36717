import ArgumentParser
import EtcdClient
import MariaDBClient

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print Marina's version and the C libraries it uses.")

    func run() {
        print("marina \(Marina.version)")
        print("libmariadb \(MariaDBConnection.libraryVersion)")
        print(EtcdClient.transportVersion)
    }
}
