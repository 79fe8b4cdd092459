<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * What came back for serverSideEmitWithAck().
 */
final class ServerAckResult
{
    /**
     * @param list<ServerReply> $replies in arrival order
     * @param int $serversExpected how many servers were expected to answer
     * @param bool $complete every expected server replied before the timeout
     */
    public function __construct(
        public readonly array $replies,
        public readonly int $serversExpected,
        public readonly bool $complete,
    ) {
    }
}
