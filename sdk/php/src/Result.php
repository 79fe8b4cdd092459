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
     */
    public function __construct(public readonly int $receivers)
    {
    }
}
