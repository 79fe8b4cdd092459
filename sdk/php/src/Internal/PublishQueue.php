<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Code;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\FieldViolation;
use Emitgate\PublishResult;
use Emitgate\Transport\CurlTransport;

/**
 * The buffer and the sending of a Publisher, shared by the publishers its
 * operators derive. Items are kept encoded (Wire::item()) and sent in
 * publish order, one BatchEmit call at a time (the curl transport makes one
 * call at a time), non-atomic: every item's result goes to its handle.
 *
 * @internal
 */
final class PublishQueue
{
    /** The first wait before retrying a whole-call UNAVAILABLE, in seconds. */
    public const BACKOFF_INITIAL = 0.1;

    /** The factor the wait grows by after each attempt. */
    public const BACKOFF_MULTIPLIER = 2.0;

    /** The longest wait between two attempts, in seconds. */
    public const BACKOFF_MAX = 2.0;

    /** Attempts of one BatchEmit call, the first one included. */
    public const MAX_ATTEMPTS = 5;

    /** @var list<string> the encoded items of the batch being filled */
    private array $items = [];

    /** @var list<PublishResult> their handles */
    private array $handles = [];

    /** The encoded size of $items. */
    private int $bytes = 0;

    /** @var list<bool> whether each item has an idempotency key */
    private array $keyed = [];

    private bool $closed = false;

    /**
     * @param CurlTransport $transport the client's transport
     * @param float $timeout the deadline of one BatchEmit call, in seconds
     * @param BatchLimit $limit the client's BatchEmit chunk size
     * @param int $maxItems the most items per BatchEmit call
     * @param int $maxBytes the most encoded item bytes per BatchEmit call
     * @param int $buffer the most events not yet answered
     * @param bool $failWhenFull true to refuse an event beyond $buffer,
     *        false to send the buffered ones first
     */
    public function __construct(
        private readonly CurlTransport $transport,
        private readonly float $timeout,
        private readonly BatchLimit $limit,
        private int $maxItems,
        private readonly int $maxBytes,
        private readonly int $buffer,
        private readonly bool $failWhenFull,
    ) {
    }

    /**
     * Buffers an encoded item; sends the batch when it is full.
     *
     * @param string $item the item (Wire::item())
     * @param bool $keyed true when it has an idempotency key
     * @param PublishResult $handle its handle
     * @throws ResourceExhaustedException locally when the buffer is full and
     *         the publisher fails fast
     * @throws \LogicException when the publisher is closed
     */
    public function add(string $item, bool $keyed, PublishResult $handle): void
    {
        $this->checkOpen();
        $size = strlen($item);
        if ($this->items !== [] && $this->bytes + $size > $this->maxBytes) {
            $this->sendBuffered();
        }
        if (count($this->items) >= $this->buffer) {
            if ($this->failWhenFull) {
                throw new ResourceExhaustedException(
                    Code::RESOURCE_EXHAUSTED,
                    sprintf(
                        'the publisher holds %d events not yet answered, its buffer; flush() first or raise buffer',
                        count($this->items)
                    ),
                    true
                );
            }
            $this->sendBuffered();
        }
        $this->items[] = $item;
        $this->handles[] = $handle;
        $this->keyed[] = $keyed;
        $this->bytes += $size;
        if (count($this->items) >= min($this->maxItems, $this->limit->maxItems) || $this->bytes >= $this->maxBytes) {
            $this->sendBuffered();
        }
    }

    /**
     * Sends everything buffered and resolves every handle.
     */
    public function flush(): void
    {
        while ($this->items !== []) {
            $this->sendBuffered();
        }
    }

    /**
     * Flushes, then refuses further events.
     */
    public function close(): void
    {
        $this->flush();
        $this->closed = true;
    }

    /**
     * Tells whether close() was called.
     *
     * @return bool true when closed
     */
    public function isClosed(): bool
    {
        return $this->closed;
    }

    /**
     * Returns how many events are buffered, not sent yet.
     *
     * @return int the number of events
     */
    public function pending(): int
    {
        return count($this->items);
    }

    /**
     * Throws when the publisher is closed.
     *
     * @throws \LogicException when closed
     */
    public function checkOpen(): void
    {
        if ($this->closed) {
            throw new \LogicException('the publisher is closed');
        }
    }

    /**
     * Takes the buffered items out and sends them.
     */
    private function sendBuffered(): void
    {
        $items = $this->items;
        $handles = $this->handles;
        $keyed = $this->keyed;
        $this->items = [];
        $this->handles = [];
        $this->keyed = [];
        $this->bytes = 0;
        $this->send($items, $handles, $keyed);
    }

    /**
     * Sends items in one BatchEmit call (or in smaller ones when the gateway
     * says the call has too many items), retrying a whole-call UNAVAILABLE
     * (and a RESOURCE_EXHAUSTED with a retry delay) only when every item has
     * an idempotency key, and resolves their handles.
     *
     * @param list<string> $items the encoded items
     * @param list<PublishResult> $handles their handles
     * @param list<bool> $keyed whether each item has an idempotency key
     */
    private function send(array $items, array $handles, array $keyed): void
    {
        $count = count($items);
        $allKeyed = !in_array(false, $keyed, true);
        $body = implode('', $items);
        $backoff = self::BACKOFF_INITIAL;
        for ($attempt = 1;; $attempt++) {
            try {
                $answer = $this->transport->call(Requests::SERVICE . 'BatchEmit', $body, $this->timeout);
                $results = Wire::results($answer, $count);
                break;
            } catch (EmitgateException $e) {
                if ($this->limit->shrinkOn($e, $count)) {
                    $this->maxItems = min($this->maxItems, $this->limit->maxItems);
                    $this->sendInChunks($items, $handles, $keyed);
                    return;
                }
                $wait = $allKeyed && $attempt < self::MAX_ATTEMPTS ? self::retryWait($e, $backoff) : null;
                if ($wait === null) {
                    foreach ($handles as $handle) {
                        $handle->fail($e);
                    }
                    return;
                }
                usleep((int) ($wait * 1e6));
                $backoff = min($backoff * self::BACKOFF_MULTIPLIER, self::BACKOFF_MAX);
            }
        }
        foreach ($results as $i => $result) {
            if ($result->code === Code::OK) {
                $handles[$i]->resolve($result);
                continue;
            }
            $violations = [];
            foreach ($result->violations as $v) {
                $violations[] = new FieldViolation(self::itemField($v->field), $v->description);
            }
            $handles[$i]->fail(EmitgateException::fromStatus($result->code, $result->message, $violations));
        }
    }

    /**
     * Resends items in chunks of the current limit.
     *
     * @param list<string> $items the encoded items
     * @param list<PublishResult> $handles their handles
     * @param list<bool> $keyed whether each item has an idempotency key
     */
    private function sendInChunks(array $items, array $handles, array $keyed): void
    {
        $size = min($this->maxItems, $this->limit->maxItems);
        for ($offset = 0; $offset < count($items); $offset += $size) {
            $this->send(
                array_slice($items, $offset, $size),
                array_slice($handles, $offset, $size),
                array_slice($keyed, $offset, $size)
            );
        }
    }

    /**
     * The wait before the next attempt after a whole-call error, or null
     * when the error is not retried.
     */
    private static function retryWait(EmitgateException $e, float $backoff): ?float
    {
        if ($e->getStatusCode() === Code::UNAVAILABLE) {
            return $backoff;
        }
        if ($e->getStatusCode() === Code::RESOURCE_EXHAUSTED && $e->getRetryDelay() !== null) {
            return $e->getRetryDelay();
        }
        return null;
    }

    /**
     * Turns the path of a request item (`items[3].emit.args[0]`) into the
     * path of a single call (`args[0]`), as the SDK's own checks report it.
     */
    private static function itemField(string $field): string
    {
        return (string) preg_replace('/^items\[\d+\]\.(emit|broadcast)\./', '', $field);
    }
}
