<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * Listening sockets of this process that never accept nor answer: a Redis
 * (or anything else) that hangs. They live until PHP exits.
 */
final class BlackHole
{
    /** @var list<resource> */
    private static array $held = [];

    /**
     * Opens one and returns its port.
     */
    public static function port(): int
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        if ($server === false) {
            throw new \RuntimeException("cannot listen: $error");
        }
        self::$held[] = $server;
        return (int) substr((string) strrchr((string) stream_socket_get_name($server, false), ':'), 1);
    }
}
