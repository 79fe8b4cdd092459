<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * One server's answer to serverSideEmitWithAck().
 */
final class ServerReply
{
    /**
     * @param mixed $reply the first argument the handler passed to the
     *        callback, decoded like acks
     * @param string $server the server's adapter uid where the dialect tells
     *        it, '' otherwise
     */
    public function __construct(
        public readonly mixed $reply,
        public readonly string $server = '',
    ) {
    }
}
