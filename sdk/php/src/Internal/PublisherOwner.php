<?php

declare(strict_types=1);

namespace Emitgate\Internal;

/**
 * Held by a Publisher and the publishers its operators derive (not by the
 * handles): when the last of them goes away, the buffered events are sent.
 *
 * @internal
 */
final class PublisherOwner
{
    /**
     * @param PublishQueue $queue the shared queue
     */
    public function __construct(private readonly PublishQueue $queue)
    {
    }

    /**
     * Closes the queue, which sends what is buffered; errors go to the
     * events' handles.
     */
    public function __destruct()
    {
        $this->queue->close();
    }
}
