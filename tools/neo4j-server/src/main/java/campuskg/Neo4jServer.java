package campuskg;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * Neo4j 5 Community, embedded, with its Bolt connector on 127.0.0.1 and authentication on.
 *
 * Arguments: DATA_DIR PORT [PORT ...]: one server per port, each with its own store under
 * DATA_DIR/PORT, in one JVM (campus-kg rebuilds into the server it is not serving from, then switches:
 * Community has one user database per server). The password comes from the environment
 * (NEO4J_PASSWORD), never from the command line (which every local user can read in the process
 * list). When every Bolt connector answers, the file DATA_DIR/READY is written; SIGTERM shuts the
 * databases down cleanly (a checkpoint, no recovery on the next start).
 */
public final class Neo4jServer {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Neo4jServer DATA_DIR PORT [PORT ...]   (password in NEO4J_PASSWORD)");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            System.err.println("NEO4J_PASSWORD must be set (8 characters or more)");
            System.exit(2);
        }
        Files.createDirectories(home);
        Path ready = home.resolve("READY");
        Files.deleteIfExists(ready);

        List<DatabaseManagementService> servers = new ArrayList<>();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Files.deleteIfExists(ready);
            } catch (Exception ignored) {
                // best effort: the file only tells a waiting client that Bolt answers
            }
            servers.forEach(DatabaseManagementService::shutdown);
        }, "neo4j-shutdown"));
        StringBuilder uris = new StringBuilder();
        for (int i = 1; i < args.length; i++) {
            int port = Integer.parseInt(args[i]);
            servers.add(start(home.resolve(String.valueOf(port)), port, password));
            uris.append("bolt://127.0.0.1:").append(port).append("\n");
        }
        Files.writeString(ready, uris.toString());
        System.out.println("neo4j ready (heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MB):\n" + uris);
        new CountDownLatch(1).await();
    }

    private static DatabaseManagementService start(Path store, int port, String password) {
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(store)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(30))
                // Leave the page cache modest: the tests and the API share a 2-core, small machine.
                .setConfig(GraphDatabaseSettings.pagecache_memory, Long.getLong("campuskg.pagecache", 256L << 20))
                .build();
        // The built-in user starts with a password that must be changed; set ours, no change required.
        dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        return dbms;
    }
}
