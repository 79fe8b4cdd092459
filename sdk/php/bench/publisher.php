<?php

/**
 * The PHP scenario of the emitter benchmark: publishes the benchmark's
 * workload (the same event, ~100-byte object and cycle of 300 room sets as
 * the other scenarios) through the SDK and prints one JSON line:
 * {"sent": N, "start": T, "elapsed_s": S, "cpu_s": C}, where T is the
 * microtime() of the first publish and C the CPU time (user + system) the
 * publishing loop used.
 *
 * Usage: php publisher.php ADDRESS [EVENTS] [publisher|batch]
 *   publisher  the batching Publisher (default)
 *   batch      the Batch API, one send() per 1000 events
 */

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';

// The workload of every scenario of the benchmark: one event name, one
// JSON object of about 100 bytes, a cycle of 300 room sets.
$event = 'notification';
$payloadJson = '{"id":1042,"kind":"comment","title":"New reply to your post","from":"alice",'
    . '"unread":3,"url":"/p/88"}';
$roomSets = 300;

// The room set of event $i: a user room, plus a team room for two events of
// three, plus an org room for one of three (1, 2 and 3 rooms in turn).
$rooms = static function (int $i): array {
    $rooms = ['user:' . ($i % 1000)];
    if ($i % 3 >= 1) {
        $rooms[] = 'team:' . ($i % 100);
    }
    if ($i % 3 === 2) {
        $rooms[] = 'org:' . ($i % 10);
    }
    return $rooms;
};

// User + system CPU time of this process, in seconds.
$cpu = static function (): float {
    $u = getrusage();
    return $u['ru_utime.tv_sec'] + $u['ru_utime.tv_usec'] / 1e6 + $u['ru_stime.tv_sec'] + $u['ru_stime.tv_usec'] / 1e6;
};

$address = $argv[1] ?? '127.0.0.1:50051';
$events = (int) ($argv[2] ?? 100_000);
$mode = $argv[3] ?? 'publisher';

$io = new Emitgate\Client($address, timeout: 30.0);
$payload = json_decode($payloadJson, true, 16, JSON_THROW_ON_ERROR);
$cycle = array_map($rooms, range(0, $roomSets - 1));

$cpu0 = $cpu();
$start = microtime(true);
if ($mode === 'publisher') {
    $publisher = $io->publisher();
    for ($i = 0; $i < $events; $i++) {
        $publisher->to($cycle[$i % $roomSets])->emit($event, $payload);
    }
    $publisher->flush();
} elseif ($mode === 'batch') {
    for ($off = 0; $off < $events; $off += 1000) {
        $batch = $io->batch();
        for ($i = $off; $i < min($events, $off + 1000); $i++) {
            $batch->to($cycle[$i % $roomSets])->emit($event, $payload);
        }
        $batch->send();
    }
} else {
    fwrite(STDERR, "unknown mode $mode\n");
    exit(2);
}
$elapsed = microtime(true) - $start;
echo json_encode(['sent' => $events, 'start' => $start, 'elapsed_s' => $elapsed, 'cpu_s' => $cpu() - $cpu0]), "\n";
