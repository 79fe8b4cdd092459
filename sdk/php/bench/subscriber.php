<?php

/**
 * The benchmark's counting subscriber: PSUBSCRIBEs to every channel of the
 * Socket.IO Redis adapter (`socket.io#*`), counts the messages, and prints
 * {"ready": true} once subscribed, then {"count": N, "done": T} when N
 * messages arrived (T: the microtime() of the last one).
 *
 * Usage: php subscriber.php HOST PORT EVENTS
 */

declare(strict_types=1);

/** Every message a PSUBSCRIBE delivers starts with this RESP header. */
const MARKER = "*4\r\n\$8\r\npmessage\r\n";

[$host, $port, $events] = [$argv[1], (int) $argv[2], (int) $argv[3]];
$redis = stream_socket_client("tcp://$host:$port", $errno, $error, 5.0);
if ($redis === false) {
    fwrite(STDERR, "cannot connect to Redis: $error\n");
    exit(1);
}
fwrite($redis, "*2\r\n\$10\r\nPSUBSCRIBE\r\n\$11\r\nsocket.io#*\r\n");
$reply = '';
while (!str_contains($reply, "psubscribe")) {
    $reply .= fread($redis, 4096);
}
echo json_encode(['ready' => true]), "\n";
fflush(STDOUT);

$count = 0;
$carry = '';
while ($count < $events) {
    $chunk = fread($redis, 1 << 20);
    if ($chunk === false || $chunk === '') {
        fwrite(STDERR, "Redis closed the connection after $count messages\n");
        exit(1);
    }
    // Keep the tail that could hold the start of a marker split between reads.
    $data = $carry . $chunk;
    $count += substr_count($data, MARKER);
    $carry = substr($data, -(strlen(MARKER) - 1));
}
echo json_encode(['count' => $count, 'done' => microtime(true)]), "\n";
