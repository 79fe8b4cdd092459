<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * What came back for allRooms().
 */
final class AllRoomsResult
{
    /**
     * @param list<string> $rooms every answering server's rooms, sorted,
     *        without duplicates (every socket's own id is a room too)
     * @param int $servers how many servers answered
     * @param int $serversExpected how many servers were expected to answer
     * @param bool $complete every expected server answered before the timeout
     * @param bool $truncated there were more rooms than the gateway's maximum
     */
    public function __construct(
        public readonly array $rooms,
        public readonly int $servers,
        public readonly int $serversExpected,
        public readonly bool $complete,
        public readonly bool $truncated,
    ) {
    }
}
