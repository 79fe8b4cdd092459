<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * The outcome of one item of a batch.
 */
final class ItemResult
{
    /**
     * @param Code $code OK when the item was published
     * @param string $message why the item failed; empty when it was published
     * @param list<FieldViolation> $violations the invalid fields of the item, with
     *        paths from the request root (`items[3].emit.event`)
     * @param int $receivers how many server subscriptions received the item
     * @param bool $duplicate true when the item's idempotency key was already
     *        used within the gateway's window: nothing was published, and the
     *        other fields repeat the first call's result
     * @param string|null $streamId for targets whose dialect writes to a Redis
     *        stream, the id of the entry added; null otherwise
     */
    public function __construct(
        public readonly Code $code,
        public readonly string $message,
        public readonly array $violations,
        public readonly int $receivers,
        public readonly bool $duplicate = false,
        public readonly ?string $streamId = null,
    ) {
    }

    /**
     * Tells whether the item was published.
     *
     * @return bool true when the code is OK
     */
    public function isOk(): bool
    {
        return $this->code === Code::OK;
    }
}
