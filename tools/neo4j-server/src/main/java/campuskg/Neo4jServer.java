package campuskg;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
 * Arguments: DATA_DIR PORT. The password comes from the environment (NEO4J_PASSWORD), never from
 * the command line (which every local user can read in the process list). When Bolt answers, the
 * file DATA_DIR/READY is written; SIGTERM shuts the database down cleanly (a checkpoint, no
 * recovery on the next start).
 */
public final class Neo4jServer {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Neo4jServer DATA_DIR PORT   (password in NEO4J_PASSWORD)");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            System.err.println("NEO4J_PASSWORD must be set (8 characters or more)");
            System.exit(2);
        }
        Files.createDirectories(home);
        Path ready = home.resolve("READY");
        Files.deleteIfExists(ready);

        long heapHint = Runtime.getRuntime().maxMemory();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(30))
                // Leave the page cache modest: the tests and the API share a 2-core, small machine.
                .setConfig(GraphDatabaseSettings.pagecache_memory, Long.getLong("campuskg.pagecache", 512L << 20))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Files.deleteIfExists(ready);
            } catch (Exception ignored) {
                // best effort: the file only tells a waiting client that Bolt answers
            }
            dbms.shutdown();
        }, "neo4j-shutdown"));

        // The built-in user starts with a password that must be changed; set ours, no change required.
        dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        Files.writeString(ready, "bolt://127.0.0.1:" + port + "\n");
        System.out.println("neo4j ready on bolt://127.0.0.1:" + port + " (heap " + (heapHint >> 20) + " MB)");
        new CountDownLatch(1).await();
    }
}
