package campuskg;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.importer.ImportCommand;
import org.neo4j.io.fs.DefaultFileSystemAbstraction;
import picocli.CommandLine;

/**
 * Neo4j 5 Community, embedded, with its Bolt connector on 127.0.0.1 and authentication on.
 *
 * Arguments: DATA_DIR PORT [PORT ...]: one server per port, each with its own store under
 * DATA_DIR/PORT, in one JVM (campus-kg rebuilds into the server it is not serving from, then switches:
 * Community has one user database per server). The password comes from the environment
 * (NEO4J_PASSWORD), never from the command line (which every local user can read in the process
 * list). When every Bolt connector answers, the file DATA_DIR/READY is written; SIGTERM shuts the
 * databases down cleanly (a checkpoint, no recovery on the next start).
 *
 * Offline import (what `neo4j-admin database import full` does, in this JVM): a client that can write
 * to DATA_DIR/imports/PORT (the state directory is the owner's only) puts CSV files there and then a
 * file REQUEST, one `--nodes=Label=FILE` or `--relationships=TYPE=FILE` per line (files in that
 * directory only; no lines: an empty store). The server stops that port's DBMS, replaces its `neo4j`
 * database with the import, starts it again and writes RESULT (`ok` or `failed: why`). This replaces
 * the store of a standby in seconds where deleting it node by node and loading it with UNWIND takes
 * minutes; campus-kg only ever asks it for the slot it is not serving.
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

        Map<Integer, DatabaseManagementService> servers = new ConcurrentHashMap<>();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Files.deleteIfExists(ready);
            } catch (Exception ignored) {
                // best effort: the file only tells a waiting client that Bolt answers
            }
            synchronized (servers) {
                servers.values().forEach(DatabaseManagementService::shutdown);
                servers.clear();
            }
        }, "neo4j-shutdown"));
        StringBuilder uris = new StringBuilder();
        for (int i = 1; i < args.length; i++) {
            int port = Integer.parseInt(args[i]);
            servers.put(port, start(home.resolve(String.valueOf(port)), port, password, true));
            Path inbox = home.resolve("imports").resolve(String.valueOf(port));
            Files.createDirectories(inbox);
            Files.deleteIfExists(inbox.resolve("REQUEST"));
            uris.append("bolt://127.0.0.1:").append(port).append("\n");
        }
        Files.writeString(ready, uris.toString());
        System.out.println("neo4j ready (heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MB):\n" + uris);
        while (true) {  // the import inboxes, one request at a time
            for (int port : servers.keySet()) {
                Path inbox = home.resolve("imports").resolve(String.valueOf(port));
                if (Files.exists(inbox.resolve("REQUEST"))) {
                    try {
                        replaceStore(servers, home, port, inbox, password);
                    } catch (Exception e) {  // the inbox stays served; the client times out with its own message
                        System.out.println("import into :" + port + " could not be answered: " + e);
                    }
                }
            }
            Thread.sleep(100);
        }
    }

    /** Stops the port's DBMS, replaces its `neo4j` database by an offline import (or an empty store), starts it. */
    private static void replaceStore(Map<Integer, DatabaseManagementService> servers, Path home, int port, Path inbox,
                                     String password) throws Exception {
        Path working = inbox.resolve("WORKING");
        Files.move(inbox.resolve("REQUEST"), working, StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(inbox.resolve("RESULT"));
        long started = System.nanoTime();
        String outcome;
        Path store = home.resolve(String.valueOf(port));
        try {
            List<String> files = importArguments(inbox, Files.readAllLines(working, StandardCharsets.UTF_8));
            DatabaseManagementService dbms = servers.get(port);
            if (dbms == null) {
                return;  // shutting down
            }
            // Only the user database goes offline when the edition allows it (no Bolt restart);
            // Community refuses STOP DATABASE, so there the whole DBMS of that port restarts.
            boolean databaseOnly = true;
            try {
                dbms.shutdownDatabase("neo4j");
            } catch (Exception refused) {
                databaseOnly = false;
                synchronized (servers) {
                    servers.remove(port);
                    dbms.shutdown();
                }
            }
            try {
                deleteTree(store.resolve("data").resolve("databases").resolve("neo4j"));
                deleteTree(store.resolve("data").resolve("transactions").resolve("neo4j"));
                if (!files.isEmpty()) {
                    runImport(store, inbox, files);
                }
            } finally {
                if (databaseOnly) {
                    dbms.startDatabase("neo4j");
                } else {
                    synchronized (servers) {
                        servers.put(port, start(store, port, password, false));
                    }
                }
            }
            outcome = String.format("ok %.1f s", (System.nanoTime() - started) / 1e9);
        } catch (Exception e) {
            outcome = "failed: " + e.getMessage();
        }
        System.out.println("import into :" + port + ": " + outcome);
        try (Stream<Path> left = Files.list(inbox)) {
            for (Path p : (Iterable<Path>) left::iterator) {
                if (p.getFileName().toString().endsWith(".csv")) {
                    Files.deleteIfExists(p);
                }
            }
        }
        Files.deleteIfExists(working);
        Path result = inbox.resolve("RESULT.tmp");
        Files.writeString(result, outcome + "\n");
        Files.move(result, inbox.resolve("RESULT"), StandardCopyOption.ATOMIC_MOVE);
    }

    /** The request's lines, checked: only node and relationship files, and only from the inbox. */
    private static List<String> importArguments(Path inbox, List<String> lines) {
        List<String> out = new ArrayList<>();
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            if (line.equals("--multiline-fields=true")) {  // slower: the client asks only when a value has a line break
                out.add(line);
                continue;
            }
            if (!line.matches("--(nodes|relationships)=[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.-]+\\.csv")) {
                throw new IllegalArgumentException("refused import argument: " + line);
            }
            int file = line.lastIndexOf('=') + 1;
            out.add(line.substring(0, file) + inbox.resolve(line.substring(file)));
        }
        return out;
    }

    private static void runImport(Path store, Path inbox, List<String> files) {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
        var context = new org.neo4j.cli.ExecutionContext(store, store.resolve("conf"), out, out,
                new DefaultFileSystemAbstraction());
        // The database first: a trailing one would be read as one more file of the last --relationships.
        List<String> args = new ArrayList<>(List.of("neo4j",
                "--overwrite-destination=true", "--id-type=string",
                "--skip-bad-relationships=true", "--bad-tolerance=" + Long.MAX_VALUE,
                "--report-file=" + inbox.resolve("import.report"), "--threads=" + Runtime.getRuntime().availableProcessors()));
        args.addAll(files);
        CommandLine command = new CommandLine(new ImportCommand.Full(context));
        command.setOut(new java.io.PrintWriter(out, true));
        command.setErr(new java.io.PrintWriter(out, true));
        int code = command.execute(args.toArray(String[]::new));
        System.out.println(log.toString(StandardCharsets.UTF_8));  // the importer's progress, into the server log
        if (code != 0) {
            String text = log.toString(StandardCharsets.UTF_8);
            throw new IllegalStateException("import exit " + code + ": "
                    + text.substring(Math.max(0, text.length() - 2000)).replace('\n', ' '));
        }
    }

    private static void deleteTree(Path dir) throws Exception {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }

    private static DatabaseManagementService start(Path store, int port, String password, boolean first) {
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(store)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                // A store replacement restarts the DBMS: without these Bolt idles 10 s on the way down.
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(200))
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(200))
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(2))
                .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(30))
                // Leave the page cache modest: the tests and the API share a 2-core, small machine.
                .setConfig(GraphDatabaseSettings.pagecache_memory, Long.getLong("campuskg.pagecache", 256L << 20))
                .build();
        // The built-in user starts with a password that must be changed; set ours, no change required.
        if (first) {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        }
        return dbms;
    }
}
