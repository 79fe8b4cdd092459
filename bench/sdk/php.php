<?php

/*
 * Benchmark driver of the PHP SDK: the Publisher in one CLI process.
 *
 * Reads one JSON object on stdin:
 *   {"grpc": "127.0.0.1:P", "seconds": 4, "event": "...", "payload_json": "{...}",
 *    "rooms": [["user:0"], ...]}
 * publishes the workload (the event with the payload object, cycling through
 * the room sets) for that long, closes the Publisher (which delivers
 * everything buffered) and prints one JSON line: {"sent": N, "errors": E,
 * "first_error": "...", "cpu_s": C} (C: this process's CPU time).
 */

declare(strict_types=1);

require dirname(__DIR__, 2) . '/sdk/php/autoload.php';

// Events published between two looks at the clock.
const CHECK_EVERY = 1000;

function cpuSeconds(): float
{
    $u = getrusage();
    return $u['ru_utime.tv_sec'] + $u['ru_utime.tv_usec'] / 1e6
        + $u['ru_stime.tv_sec'] + $u['ru_stime.tv_usec'] / 1e6;
}

$cfg = json_decode((string) stream_get_contents(STDIN), true, 64, JSON_THROW_ON_ERROR);
$payload = json_decode($cfg['payload_json'], true, 64, JSON_THROW_ON_ERROR);
$rooms = $cfg['rooms'];
$event = $cfg['event'];
$n = count($rooms);
$cpu0 = cpuSeconds();
$io = new Emitgate\Client($cfg['grpc'], timeout: 30.0);
$publisher = $io->publisher();
$handles = [];
$deadline = microtime(true) + $cfg['seconds'];
$i = 0;
while (microtime(true) < $deadline) {
    for ($k = 0; $k < CHECK_EVERY; $k++, $i++) {
        $handles[] = $publisher->to($rooms[$i % $n])->emit($event, $payload);
    }
}
$publisher->close();
$cpu = cpuSeconds() - $cpu0;
$errors = 0;
$first = null;
foreach ($handles as $handle) {
    $error = $handle->getError();
    if ($error !== null) {
        $errors++;
        $first ??= $error->getMessage();
    }
}
$report = ['sent' => count($handles) - $errors, 'errors' => $errors, 'first_error' => $first, 'cpu_s' => $cpu];
echo json_encode($report), "\n";
