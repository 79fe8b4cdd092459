<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * The outcome of a published call.
 */
final class Result
{
    /**
     * @param int $receivers how many Socket.IO server subscriptions (for emit and
     *        broadcast) or servers (for the other operations) received the
     *        packet; 0 means no server listens on that namespace
     * @param bool $duplicate true when the call's idempotency key was already
     *        used within the gateway's window: nothing was published, and
     *        $receivers and $streamId repeat the first call's result
     * @param string|null $streamId for targets whose dialect writes to a Redis
     *        stream, the id of the entry added ($receivers is 0 then); null otherwise
     */
    public function __construct(
        public readonly int $receivers,
        public readonly bool $duplicate = false,
        public readonly ?string $streamId = null,
    ) {
    }
}
