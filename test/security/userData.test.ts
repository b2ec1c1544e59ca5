import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DescribeInstanceAttributeCommand, EC2Client } from '@aws-sdk/client-ec2';
import { parseAgentKeys, PerNodeAuth } from '../../activities/agentAuth.ts';
import { AwsEc2Provider } from '../../activities/providers/aws.ts';
import { PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { MOTO_IMAGE_ID } from '../helpers/cloudFleet.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

const REGION = 'us-east-1';
const KEY = `k1:${'m'.repeat(40)}`;

describe('EC2 user data hands each node its own control token (moto)', () => {
  let moto: Moto;
  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    moto = await startMoto();
  });
  after(() => moto?.stop());

  it('{{controlToken}} is the node’s own token; the key and the other nodes’ tokens are nowhere in it', async () => {
    const auth = new PerNodeAuth(parseAgentKeys(KEY, 'DRYDOCK_AGENT_KEY'));
    const ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint });
    const p = new AwsEc2Provider(
      { region: REGION, imageId: MOTO_IMAGE_ID, endpoint: moto.endpoint, zone: 'us-east-1a', userData: '#!/bin/bash\necho "control {{controlToken}} control-plane" > /etc/drydock/agent-tokens\n# {{pool}}/{{nodeId}}\n' },
      new PrivateIpAgent(9400, auth),
      'pool gpu',
      ec2,
    );
    const nodes = await Promise.all(['a', 'b'].map((k) => p.provision({ pool: 'gpu', instanceType: 'p4d.24xlarge' }, `ud/${k}`)));
    const userData = async (id: string) => {
      const r = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }));
      return Buffer.from(r.UserData?.Value ?? '', 'base64').toString('utf8');
    };
    for (const [n, other] of [[nodes[0], nodes[1]], [nodes[1], nodes[0]]]) {
      const text = await userData(n.providerId!);
      assert.match(text, new RegExp(`control ${auth.tokensFor('gpu', n.id)[0].replaceAll('.', '\\.')} control-plane`));
      assert.match(text, new RegExp(`# gpu/${n.id}`));
      assert.ok(!text.includes(auth.tokensFor('gpu', other.id)[0]), 'not the other node’s token');
      assert.ok(!text.includes('m'.repeat(40)), 'not the master key');
    }
    // The provider's answer (what an activity returns into a history) carries no token.
    assert.ok(!JSON.stringify(nodes).includes('ddn1.'));
  });
});
