<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Internal\PublishQueue;

/**
 * The result of one event published through a Publisher. PHP has no
 * background threads, so the handle is resolved when the event's batch is
 * sent: when the batch is full, on Publisher::flush() and on close. get()
 * before that flushes the publisher first.
 *
 * ```php
 * $handle = $publisher->to('room1')->emit('chat', 'hi');
 * $publisher->flush();
 * $handle->get()->receivers;   // or throws the event's error
 * ```
 */
final class PublishResult
{
    private ?ItemResult $result = null;

    private ?EmitgateException $error = null;

    /**
     * Use Publisher::emit() or Publisher::broadcast().
     *
     * @param PublishQueue|null $queue the queue that will resolve it; null
     *        for a handle failed at once
     * @internal
     */
    public function __construct(private ?PublishQueue $queue)
    {
    }

    /**
     * Returns the event's result, flushing the publisher first when the
     * event has not been answered yet.
     *
     * @return ItemResult the gateway's result for the event (code OK;
     *         `duplicate` true when its idempotency key was used before)
     * @throws EmitgateException the event's error: an InvalidArgumentException
     *         with field violations for an invalid event (found by the SDK
     *         before sending, or by the gateway), PermissionDeniedException,
     *         or the error of the whole BatchEmit call (UnavailableException, ...)
     */
    public function get(): ItemResult
    {
        if ($this->queue !== null) {
            $this->queue->flush();
        }
        if ($this->error !== null) {
            throw $this->error;
        }
        if ($this->result === null) {
            throw new \LogicException('the event was never sent');
        }
        return $this->result;
    }

    /**
     * Tells whether the event was answered (published or failed).
     *
     * @return bool true once get() returns or throws without sending anything
     */
    public function isDone(): bool
    {
        return $this->queue === null;
    }

    /**
     * Returns the event's error without throwing it, flushing the publisher
     * first when the event has not been answered yet.
     *
     * @return EmitgateException|null the error, or null when it was published
     */
    public function getError(): ?EmitgateException
    {
        if ($this->queue !== null) {
            $this->queue->flush();
        }
        return $this->error;
    }

    /**
     * Resolves the handle with the gateway's result.
     *
     * @param ItemResult $result the result (code OK)
     * @internal
     */
    public function resolve(ItemResult $result): void
    {
        $this->result = $result;
        $this->queue = null;
    }

    /**
     * Resolves the handle with an error.
     *
     * @param EmitgateException $error the event's error
     * @internal
     */
    public function fail(EmitgateException $error): void
    {
        $this->error = $error;
        $this->queue = null;
    }
}
