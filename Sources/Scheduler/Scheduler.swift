/// The scheduler shell: runs the Raft core and the routing policies behind the wire protocol
/// (issue: Scheduler trio). Empty until that issue lands.
public enum SchedulerModule {}
