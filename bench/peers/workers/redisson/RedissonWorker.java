// Redisson's RLock (Java) as a `make bench-peers` worker, with the protocol of
// bench/peers/workers/lockbench.py:
//
//   java -cp ... RedissonWorker uncontended|contend|fanin|waiters URL SECONDS [ARGS...]
//
// Waiting is the library's default: RLock.lock subscribes to the lock's channel and sleeps
// until a release message or the holder's expiry. Uncontended and fan-in cycles run one
// second of warm-up for the JIT before they are counted. System.nanoTime reads
// CLOCK_MONOTONIC on Linux, the clock of every worker of the contended scenario.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.redisson.Redisson;
import org.redisson.api.RLock;
import org.redisson.api.RedissonClient;
import org.redisson.config.Config;

public final class RedissonWorker {
    private static final long TTL_SECONDS = 10;
    private static final double WARM_UP_SECONDS = 1;

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: RedissonWorker uncontended|contend|fanin|waiters URL SECONDS [ARGS...]");
            System.exit(2);
        }
        String url = args[1];
        double seconds = Double.parseDouble(args[2]);
        switch (args[0]) {
            case "uncontended" -> cyclesPerSec(url, seconds, 1);
            case "contend" -> contend(url, seconds, Double.parseDouble(args[3]), Double.parseDouble(args[4]));
            case "fanin" -> cyclesPerSec(url, seconds, Integer.parseInt(args[3]));
            case "waiters" -> waiters(url, seconds, Integer.parseInt(args[3]));
            default -> {
                System.err.println("RedissonWorker: unknown scenario " + args[0]);
                System.exit(2);
            }
        }
    }

    private static RedissonClient newClient(String url) {
        Config config = new Config();
        config.useSingleServer().setAddress(url);
        return Redisson.create(config);
    }

    /** Takes a free lock with one attempt and releases it. */
    private static void cycle(RLock lock) throws InterruptedException {
        if (!lock.tryLock(0, TTL_SECONDS, TimeUnit.SECONDS)) {
            throw new IllegalStateException(lock.getName() + " was held");
        }
        lock.unlock();
    }

    private static long cycles(RLock lock, double seconds) throws InterruptedException {
        long count = 0;
        for (long end = System.nanoTime() + (long) (seconds * 1e9); System.nanoTime() < end; count++) {
            cycle(lock);
        }
        return count;
    }

    /** `threads` threads on one client, one name each: warm-up, then counted cycles. */
    private static void cyclesPerSec(String url, double seconds, int threads) throws Exception {
        RedissonClient client = newClient(url);
        LongAdder total = new LongAdder();
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            RLock lock = client.getLock("bench:redisson:" + ProcessHandle.current().pid() + ":" + i);
            workers.add(new Thread(() -> {
                try {
                    cycles(lock, WARM_UP_SECONDS);
                    total.add(cycles(lock, seconds));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        workers.forEach(Thread::start);
        Thread.sleep((long) (WARM_UP_SECONDS * 1000));
        long start = System.nanoTime();
        for (Thread worker : workers) worker.join();
        System.out.printf("cycles_per_sec %.1f%n", total.sum() / ((System.nanoTime() - start) / 1e9));
        client.shutdown();
    }

    private static void contend(String url, double seconds, double holdMs, double pauseMs) throws Exception {
        RedissonClient client = newClient(url);
        RLock lock = client.getLock("bench:contended");
        StringBuilder out = new StringBuilder();
        for (long end = System.nanoTime() + (long) (seconds * 1e9); System.nanoTime() < end; ) {
            long asked = System.nanoTime();
            lock.lock(TTL_SECONDS, TimeUnit.SECONDS);
            long acquired = System.nanoTime();
            TimeUnit.MICROSECONDS.sleep((long) (holdMs * 1000));
            long released = System.nanoTime();
            lock.unlock();
            out.append("cs ").append(asked).append(' ').append(acquired).append(' ').append(released).append('\n');
            TimeUnit.MICROSECONDS.sleep((long) (pauseMs * 1000));
        }
        System.out.print(out);
        client.shutdown();
    }

    private static void waiters(String url, double seconds, int count) throws Exception {
        String name = "bench:held";
        RedissonClient holder = newClient(url);
        List<RedissonClient> clients = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            RedissonClient client = newClient(url);
            cycle(client.getLock("bench:redisson:warm:" + i)); // connected and warm before the count starts
            clients.add(client);
        }
        RLock held = holder.getLock(name);
        held.lock(TTL_SECONDS, TimeUnit.SECONDS);
        System.out.println("held");
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine();
        List<Thread> waiting = new ArrayList<>();
        for (RedissonClient client : clients) {
            Thread thread = new Thread(() -> {
                RLock lock = client.getLock(name);
                lock.lock(TTL_SECONDS, TimeUnit.SECONDS);
                lock.unlock();
            });
            thread.start();
            waiting.add(thread);
        }
        TimeUnit.MILLISECONDS.sleep((long) (seconds * 1000));
        held.unlock();
        for (Thread thread : waiting) thread.join();
        System.out.println("acquisitions " + count);
        holder.shutdown();
        clients.forEach(RedissonClient::shutdown);
    }
}
