<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * The outcome of a batch: one ItemResult per item, in the order they were added.
 */
final class BatchResult
{
    /**
     * @param list<ItemResult> $results one result per item, in order
     * @param int $published how many items were published
     * @param int $failed how many items failed
     * @param int $receivers the sum of `receivers` over all items
     * @param int $requests how many BatchEmit calls published the items
     *        (more than one when the batch was split at the gateway's limit)
     */
    public function __construct(
        public readonly array $results,
        public readonly int $published,
        public readonly int $failed,
        public readonly int $receivers,
        public readonly int $requests = 1,
    ) {
    }

    /**
     * Appends the results of a later call.
     *
     * @param self $next the results of the next call
     * @return self both, in order
     * @internal
     */
    public function merge(self $next): self
    {
        return new self(
            [...$this->results, ...$next->results],
            $this->published + $next->published,
            $this->failed + $next->failed,
            $this->receivers + $next->receivers,
            $this->requests + $next->requests
        );
    }

    /**
     * Tells whether every item was published.
     *
     * @return bool true when no item failed
     */
    public function isOk(): bool
    {
        return $this->failed === 0;
    }

    /**
     * Returns the items that failed, keyed by their index in the batch.
     *
     * @return array<int, ItemResult> the failed items
     */
    public function failures(): array
    {
        return array_filter($this->results, static fn (ItemResult $r): bool => !$r->isOk());
    }
}
