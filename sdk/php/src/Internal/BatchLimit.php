<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;

/**
 * The number of items the client puts in one BatchEmit request. It starts at
 * the gateway's default limit and is lowered when the gateway refuses a
 * request for its number of items; the client and the clients derived from
 * it share one instance, so a lowered size holds for the later batches too.
 *
 * @internal
 */
final class BatchLimit
{
    /** The gateway's default `max_batch_items`. */
    public const DEFAULT_MAX_BATCH_ITEMS = 1000;

    /** @var int the current chunk size, at least 1 */
    public int $maxItems;

    /**
     * @param int $maxItems the first chunk size, at least 1
     */
    public function __construct(int $maxItems = self::DEFAULT_MAX_BATCH_ITEMS)
    {
        if ($maxItems < 1) {
            throw new \InvalidArgumentException('maxBatchItems must be at least 1, got ' . $maxItems);
        }
        $this->maxItems = $maxItems;
    }

    /**
     * Learns from a failed request of $sent items: when the gateway refused
     * it for its number of items (INVALID_ARGUMENT over `max_batch_items`,
     * which publishes nothing), lowers the chunk size to the limit the
     * gateway sends as data (getLimits()), or to half of $sent when a
     * refusal of the field `items` names none, and tells the caller to
     * resend.
     *
     * @param EmitgateException $error the whole-call error
     * @param int $sent the number of items of the refused request
     * @return bool true when the request should be resent in smaller chunks
     */
    public function shrinkOn(EmitgateException $error, int $sent): bool
    {
        if (!$error instanceof InvalidArgumentException || $error->isLocal() || $sent <= 1) {
            return false;
        }
        $limit = $error->getLimits()['max_batch_items'] ?? null;
        if ($limit === null) {
            $fields = $error->getFields();
            if ($fields === [] || array_diff($fields, ['items']) !== []) {
                return false;
            }
            $limit = max(1, intdiv($sent, 2));
        } elseif ($limit < 1 || $limit >= $sent) {
            return false;
        }
        $this->maxItems = min($this->maxItems, $limit);
        return true;
    }
}
