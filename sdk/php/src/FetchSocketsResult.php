<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * What came back for fetchSockets().
 */
final class FetchSocketsResult
{
    /**
     * @param list<RemoteSocket> $sockets in the order the servers' answers arrived
     * @param int $servers how many servers answered
     * @param int $serversExpected how many servers were expected to answer
     * @param bool $complete every expected server answered before the timeout
     * @param bool $truncated the servers returned more sockets than the
     *        gateway's maximum: `sockets` holds the first ones (narrow the rooms)
     */
    public function __construct(
        public readonly array $sockets,
        public readonly int $servers,
        public readonly int $serversExpected,
        public readonly bool $complete,
        public readonly bool $truncated,
    ) {
    }
}
