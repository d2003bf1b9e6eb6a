package resgraph.platform.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.util.Arrays;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import resgraph.v1.UnreadableRecord;

/** What a dead letter of an unreadable record holds, and which job it fails; the publishing is tested by each service's listener. */
class UnreadableRecordsTest {

  @Test
  void aTaskKeyNamesItsJobAndEveryOtherTopicsKeyIsTheJob() {
    assertEquals(Optional.of("j-1/x"), Topics.jobOf(Topics.TASKS, "j-1/x/7"));
    assertEquals(Optional.empty(), Topics.jobOf(Topics.TASKS, "no-task-number"));
    assertEquals(Optional.empty(), Topics.jobOf(Topics.TASKS, "j/seven"));
    assertEquals(Optional.empty(), Topics.jobOf(Topics.TASKS, "j/"));
    assertEquals(Optional.empty(), Topics.jobOf(Topics.TASKS, "/3"));
    for (String topic : new String[] {Topics.EFFECTS, Topics.JOB_EVENTS, Topics.JOBS}) {
      assertEquals(Optional.of("j-2"), Topics.jobOf(topic, "j-2"), topic);
      assertEquals(Optional.empty(), Topics.jobOf(topic, ""), topic);
      assertEquals(Optional.empty(), Topics.jobOf(topic, null), topic);
    }
  }

  @Test
  void theLetterKeepsTheRecordAsItWasAndWhereItWas() {
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01};
    UnreadableRecord letter = UnreadableRecords.letter(new ConsumerRecord<>(Topics.EFFECTS, 2, 17L, "j-3", garbage), "bad", "group");
    assertEquals(UnreadableRecord.newBuilder().setTopic(Topics.EFFECTS).setPartition(2).setOffset(17).setKey("j-3")
        .setValue(ByteString.copyFrom(garbage)).setValueSize(4).setProblem("bad").setConsumer("group").build(), letter);

    UnreadableRecord none = UnreadableRecords.letter(new ConsumerRecord<>(Topics.JOBS, 0, 5L, null, null), "no value", "group");
    assertEquals("", none.getKey());
    assertEquals(0, none.getValueSize());
    assertTrue(none.getValue().isEmpty());
  }

  /** A record as large as a topic takes could not be kept whole: the broker would refuse the letter, and the listener be stuck on it. */
  @Test
  void aValueTooLargeToKeepWholeKeepsWhatFitsAndSaysHowLargeItWas() {
    byte[] huge = new byte[Topics.MAX_MESSAGE_BYTES];
    Arrays.fill(huge, (byte) 0xff);
    String key = "j-4";
    UnreadableRecord letter = UnreadableRecords.letter(new ConsumerRecord<>(Topics.EFFECTS, 1, 9L, key, huge), "too broken", "group");
    assertEquals(huge.length, letter.getValueSize());
    assertTrue(letter.getSerializedSize() + key.length() <= Topics.MAX_MESSAGE_BYTES - 512, "fits with room: " + letter.getSerializedSize());
    assertTrue(letter.getValue().size() > Topics.MAX_MESSAGE_BYTES - 2048, "keeps all it can: " + letter.getValue().size());
    assertArrayEquals(Arrays.copyOf(huge, letter.getValue().size()), letter.getValue().toByteArray());
  }

  @Test
  void theReasonNamesTheTopicTheOffsetAndWhatWasWrong() {
    assertEquals("a record of this job cannot be read (resgraph.effects partition 2 offset 17, key j-3): the value is not a valid"
        + " TaskEffects (truncated); it is kept on resgraph.unreadable",
        UnreadableRecords.reason(new ConsumerRecord<>(Topics.EFFECTS, 2, 17L, "j-3", new byte[0]),
            "the value is not a valid TaskEffects (truncated)"));
  }
}
