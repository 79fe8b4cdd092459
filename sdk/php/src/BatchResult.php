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
     */
    public function __construct(
        public readonly array $results,
        public readonly int $published,
        public readonly int $failed,
        public readonly int $receivers,
    ) {
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
