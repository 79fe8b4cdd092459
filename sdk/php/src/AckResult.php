<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * What came back for emitWithAck(). A timeout is not an error: read
 * `complete` false as "some clients may not have received or acknowledged
 * the event".
 */
final class AckResult
{
    /**
     * @param int $sockets how many clients received the event (the sum of the
     *        counts the answering servers reported)
     * @param list<mixed> $acks each client's ack reply (the first argument it
     *        passed to its callback), decoded, in arrival order
     * @param int $servers how many servers reported their client count
     * @param int $serversExpected how many servers were expected to answer
     * @param bool $complete every expected server answered and every counted
     *        client acked before the timeout
     */
    public function __construct(
        public readonly int $sockets,
        public readonly array $acks,
        public readonly int $servers,
        public readonly int $serversExpected,
        public readonly bool $complete,
    ) {
    }
}
