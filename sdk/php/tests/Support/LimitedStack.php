<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * The gateway arguments of a second stack: small limits, plus extra targets
 * from a config file:
 * - `down`: a closed port, so calls get UNAVAILABLE from the gateway;
 * - `stalled`: a listening socket of this process that never answers, so
 *   calls hang in the gateway until its Redis timeout.
 */
final class LimitedStack
{
    public const MAX_BATCH_ITEMS = 5;
    public const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
    public const REDIS_TIMEOUT_MS = 3000;

    /** @var list<string>|null */
    private static ?array $args = null;

    /**
     * @return list<string>
     */
    public static function gatewayArgs(): array
    {
        if (self::$args !== null) {
            return self::$args;
        }
        $stalledPort = BlackHole::port();
        $closed = stream_socket_server('tcp://127.0.0.1:0');
        $closedPort = (int) substr((string) strrchr((string) stream_socket_get_name($closed, false), ':'), 1);
        fclose($closed);

        $config = TempDir::write('limited.toml', <<<TOML
            [[targets]]
            name = "down"
            redis_url = "redis://127.0.0.1:$closedPort"
            dialect = "socketio"
            key = "socket.io"

            [[targets]]
            name = "stalled"
            redis_url = "redis://127.0.0.1:$stalledPort"
            dialect = "socketio"
            key = "socket.io"

            TOML);
        return self::$args = [
            '--config',
            $config,
            '--max-batch-items',
            (string) self::MAX_BATCH_ITEMS,
            '--max-message-bytes',
            (string) self::MAX_MESSAGE_BYTES,
            '--redis-timeout-ms',
            (string) self::REDIS_TIMEOUT_MS,
        ];
    }
}
