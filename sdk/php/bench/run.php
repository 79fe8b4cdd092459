<?php

/**
 * Runs the PHP emitter benchmark: starts redis-server, a release gateway
 * and the counting subscriber on free loopback ports, runs publisher.php,
 * and prints events/s (events counted at the subscriber over the time from
 * the first publish to the last message), the client's CPU per event and
 * its wall time per event (CPU plus the time it waits for the gateway).
 *
 * Usage: php run.php [EVENTS] [MODE...]     (modes: publisher, batch; default both)
 * The gateway is $EMITGATE_BIN, or target/release/emitgate of the repository
 * (`cargo build --release --locked -p emitgate`).
 */

declare(strict_types=1);

$repo = dirname(__DIR__, 3);
$events = (int) ($argv[1] ?? 100_000);
$modes = array_slice($argv, 2) ?: ['publisher', 'batch'];
$gatewayBin = getenv('EMITGATE_BIN') ?: "$repo/target/release/emitgate";
if (!is_executable($gatewayBin)) {
    fwrite(STDERR, "no gateway at $gatewayBin: cargo build --release --locked -p emitgate\n");
    exit(1);
}

$freePort = static function (): int {
    $s = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int) substr((string) strrchr((string) stream_socket_get_name($s, false), ':'), 1);
    fclose($s);
    return $port;
};

/** @return resource */
$spawn = static function (array $cmd, ?array &$pipes, string $log) {
    $p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', $log, 'a']], $pipes);
    if (!is_resource($p)) {
        throw new RuntimeException('cannot start ' . implode(' ', $cmd));
    }
    return $p;
};

$waitPort = static function (int $port): void {
    $deadline = microtime(true) + 30;
    while (microtime(true) < $deadline) {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $error, 1.0);
        if ($s !== false) {
            fclose($s);
            return;
        }
        usleep(20_000);
    }
    throw new RuntimeException("nothing listens on $port");
};

/** @param resource $pipe */
$readJson = static function ($pipe): array {
    $line = fgets($pipe);
    if ($line === false) {
        throw new RuntimeException('a benchmark process exited early (see the log)');
    }
    return json_decode($line, true, 16, JSON_THROW_ON_ERROR);
};

$log = tempnam(sys_get_temp_dir(), 'emitgate-php-bench-');
$redisPort = $freePort();
$grpcPort = $freePort();
$redis = $spawn(['redis-server', '--port', (string) $redisPort, '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no'], $redisPipes, $log);
$waitPort($redisPort);
$gateway = $spawn(
    [$gatewayBin, '--listen', "127.0.0.1:$grpcPort", '--redis-url', "redis://127.0.0.1:$redisPort"],
    $gatewayPipes,
    $log
);
$waitPort($grpcPort);

printf("%-10s %8s %12s %18s %18s\n", 'mode', 'events', 'events/s', 'client CPU/event', 'client wall/event');
foreach ($modes as $mode) {
    $sub = $spawn(
        [PHP_BINARY, __DIR__ . '/subscriber.php', '127.0.0.1', (string) $redisPort, (string) $events],
        $subPipes,
        $log
    );
    $readJson($subPipes[1]);
    $pub = $spawn(
        [PHP_BINARY, __DIR__ . '/publisher.php', "127.0.0.1:$grpcPort", (string) $events, $mode],
        $pubPipes,
        $log
    );
    $published = $readJson($pubPipes[1]);
    $counted = $readJson($subPipes[1]);
    proc_close($pub);
    proc_close($sub);
    $seconds = $counted['done'] - $published['start'];
    printf(
        "%-10s %8d %12.0f %15.1f µs %15.1f µs\n",
        $mode,
        $counted['count'],
        $counted['count'] / $seconds,
        $published['cpu_s'] / $events * 1e6,
        $published['elapsed_s'] / $events * 1e6
    );
}

proc_terminate($gateway);
proc_close($gateway);
proc_terminate($redis);
proc_close($redis);
unlink($log);
