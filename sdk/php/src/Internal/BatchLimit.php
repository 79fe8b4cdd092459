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

    /** What the gateway writes before the limit in the violation on `items`. */
    private const LIMIT_MARKER = 'max_batch_items = ';

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
     * it for its number of items (INVALID_ARGUMENT with violations on the
     * field `items` only, which publishes nothing), lowers the chunk size to
     * the limit the gateway states, or to half of $sent, and tells the
     * caller to resend.
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
        $violations = $error->getFieldViolations();
        if ($violations === []) {
            return false;
        }
        $limit = null;
        foreach ($violations as $v) {
            if ($v->field !== 'items') {
                return false;
            }
            $at = strpos($v->description, self::LIMIT_MARKER);
            if ($at !== false) {
                $n = (int) substr($v->description, $at + strlen(self::LIMIT_MARKER));
                if ($n >= 1 && $n < $sent) {
                    $limit = $n;
                }
            }
        }
        $this->maxItems = min($this->maxItems, $limit ?? max(1, intdiv($sent, 2)));
        return true;
    }
}
