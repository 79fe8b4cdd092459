<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * One socket a server reported, like the JavaScript RemoteSocket of
 * fetchSockets().
 */
final class RemoteSocket
{
    /**
     * @param string $id the socket id
     * @param list<string> $rooms the rooms the socket is in, its own id included
     * @param mixed $data the socket's `socket.data`, decoded like acks
     * @param Handshake $handshake the connection details, without secrets
     */
    public function __construct(
        public readonly string $id,
        public readonly array $rooms,
        public readonly mixed $data,
        public readonly Handshake $handshake,
    ) {
    }
}
